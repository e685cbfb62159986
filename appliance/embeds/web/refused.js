// The page shown for an invalid or expired link: a generic message, no detail. Reloading cannot
// help (the link itself is refused), so it says who can give a new one: the site that showed it.
const app = document.getElementById("app");
const main = document.createElement("main");
main.className = "notice";
main.setAttribute("aria-labelledby", "notice-title");
const h1 = document.createElement("h1");
h1.id = "notice-title";
h1.textContent = "This link can't be opened";
const p = document.createElement("p");
p.setAttribute("role", "alert");
p.textContent = document.body.dataset.message || "This link is invalid or has expired: ask the site that showed you this course for a new link.";
main.append(h1, p);
app.replaceChildren(main);
