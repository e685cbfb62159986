// Player strings per language (options.language, else the course's language, else English).
const STRINGS = {
  en: { start: "Start", resume: "Resume", next: "Next", previous: "Previous", finish: "Finish", check: "Check answer",
        retry: "Try again", correct: "Correct", incorrect: "Incorrect", score: "Your score", passed: "Passed",
        failed: "Not passed yet", progress: "Course progress", screenOf: "Screen {n} of {total}", flip: "Flip card",
        front: "Front", back: "Back", testMode: "Test mode", done: "Well done!", minutes: "{n} minutes", minute: "{n} minute", screens: "{n} screens", screen: "{n} screen", navigation: "Course navigation", yourAnswer: "Your answer", correctAnswer: "Correct answer", question: "Question {n}", review: "Review the course", retake: "Try the quiz again", finishedFailed: "Course finished", finishedNote: "You have finished this course. You can close it now.", expiredTitle: "Session ended", errorTitle: "Something went wrong",
        feedbackPrompt: "How was this course?", feedbackThanks: "Thanks for your feedback", backToHost: "Back",
        expired: "Your session has ended. Reload the page to continue.", loading: "Loading…", step: "Step {n}",
        checklistHint: "Tick every item to continue", flashcardsHint: "Flip every card to continue",
        quizHint: "Answer every question to continue", passmark: "Pass mark {n}%", courses: "Courses",
        completed: "Completed", notStarted: "Not started", open: "Open", close: "Back to the list",
        narration: "Listen to this screen", narrationFailed: "The narration could not be loaded" },
  fr: { start: "Commencer", resume: "Reprendre", next: "Suivant", previous: "Précédent", finish: "Terminer",
        check: "Vérifier", retry: "Réessayer", correct: "Correct", incorrect: "Incorrect", score: "Votre score",
        passed: "Réussi", failed: "Pas encore réussi", progress: "Progression du cours", screenOf: "Écran {n} sur {total}",
        flip: "Retourner la carte", front: "Recto", back: "Verso", testMode: "Mode test", done: "Bravo !",
        minutes: "{n} minutes", minute: "{n} minute", screens: "{n} écrans", screen: "{n} écran", navigation: "Navigation du cours", yourAnswer: "Votre réponse", correctAnswer: "Bonne réponse", question: "Question {n}", review: "Revoir le cours", retake: "Refaire le quiz", finishedFailed: "Cours terminé", finishedNote: "Vous avez terminé ce cours. Vous pouvez le fermer.", expiredTitle: "Session terminée", errorTitle: "Une erreur est survenue", feedbackPrompt: "Qu'avez-vous pensé de ce cours ?", feedbackThanks: "Merci pour votre avis",
        backToHost: "Retour", expired: "Votre session est terminée. Rechargez la page pour continuer.",
        loading: "Chargement…", step: "Étape {n}", checklistHint: "Cochez chaque élément pour continuer",
        flashcardsHint: "Retournez chaque carte pour continuer", quizHint: "Répondez à chaque question pour continuer",
        passmark: "Note de passage {n} %", courses: "Cours", completed: "Terminé", notStarted: "Non commencé",
        open: "Ouvrir", close: "Retour à la liste", narration: "Écouter cet écran",
        narrationFailed: "La narration n'a pas pu être chargée" },
  de: { start: "Starten", resume: "Fortsetzen", next: "Weiter", previous: "Zurück", finish: "Abschließen",
        check: "Antwort prüfen", retry: "Erneut versuchen", correct: "Richtig", incorrect: "Falsch", score: "Ihre Punktzahl",
        passed: "Bestanden", failed: "Noch nicht bestanden", progress: "Kursfortschritt", screenOf: "Seite {n} von {total}",
        flip: "Karte umdrehen", front: "Vorderseite", back: "Rückseite", testMode: "Testmodus", done: "Gut gemacht!",
        minutes: "{n} Minuten", minute: "{n} Minute", screens: "{n} Seiten", screen: "{n} Seite", navigation: "Kursnavigation", yourAnswer: "Ihre Antwort", correctAnswer: "Richtige Antwort", question: "Frage {n}", review: "Kurs noch einmal ansehen", retake: "Quiz wiederholen", finishedFailed: "Kurs beendet", finishedNote: "Sie haben diesen Kurs beendet. Sie können ihn jetzt schließen.", expiredTitle: "Sitzung beendet", errorTitle: "Etwas ist schiefgelaufen", feedbackPrompt: "Wie fanden Sie den Kurs?", feedbackThanks: "Danke für Ihr Feedback",
        backToHost: "Zurück", expired: "Ihre Sitzung ist beendet. Laden Sie die Seite neu.", loading: "Wird geladen…",
        step: "Schritt {n}", checklistHint: "Haken Sie jeden Punkt ab", flashcardsHint: "Drehen Sie jede Karte um",
        quizHint: "Beantworten Sie jede Frage", passmark: "Bestehensgrenze {n} %", courses: "Kurse",
        completed: "Abgeschlossen", notStarted: "Nicht begonnen", open: "Öffnen", close: "Zurück zur Liste",
        narration: "Diese Seite anhören", narrationFailed: "Die Vertonung konnte nicht geladen werden" },
  es: { start: "Empezar", resume: "Continuar", next: "Siguiente", previous: "Anterior", finish: "Terminar",
        check: "Comprobar", retry: "Intentar de nuevo", correct: "Correcto", incorrect: "Incorrecto", score: "Tu puntuación",
        passed: "Aprobado", failed: "Aún no aprobado", progress: "Progreso del curso", screenOf: "Pantalla {n} de {total}",
        flip: "Girar tarjeta", front: "Anverso", back: "Reverso", testMode: "Modo de prueba", done: "¡Bien hecho!",
        minutes: "{n} minutos", minute: "{n} minuto", screens: "{n} pantallas", screen: "{n} pantalla", navigation: "Navegación del curso", yourAnswer: "Tu respuesta", correctAnswer: "Respuesta correcta", question: "Pregunta {n}", review: "Revisar el curso", retake: "Repetir el cuestionario", finishedFailed: "Curso terminado", finishedNote: "Has terminado este curso. Ya puedes cerrarlo.", expiredTitle: "Sesión terminada", errorTitle: "Algo ha fallado", feedbackPrompt: "¿Qué te ha parecido el curso?", feedbackThanks: "Gracias por tu opinión",
        backToHost: "Volver", expired: "Tu sesión ha terminado. Recarga la página para continuar.", loading: "Cargando…",
        step: "Paso {n}", checklistHint: "Marca cada elemento para continuar", flashcardsHint: "Gira cada tarjeta para continuar",
        quizHint: "Responde cada pregunta para continuar", passmark: "Nota mínima {n} %", courses: "Cursos",
        completed: "Completado", notStarted: "Sin empezar", open: "Abrir", close: "Volver a la lista",
        narration: "Escuchar esta pantalla", narrationFailed: "No se pudo cargar la narración" },
};

export function translator(language) {
  const code = String(language || "en").toLowerCase().split(/[-_]/)[0];
  const table = STRINGS[code] || STRINGS.en;
  const t = (key, vars) => {
    let text = table[key] || STRINGS.en[key] || key;
    for (const [k, v] of Object.entries(vars || {})) text = text.replace(`{${k}}`, String(v));
    return text;
  };
  t.language = STRINGS[code] ? code : "en";
  // "1 minute" / "4 minutes": the singular key when n is 1 (all four languages count this way)
  t.count = (one, many, n) => t(n === 1 ? one : many, { n });
  return t;
}
