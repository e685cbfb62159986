// The player's transport inside an embed: the session API (Bearer JWT), one course.
export function embedTransport(session, courseId) {
  const track = (event, body) => session.post("/embed/api/track", { event, courseId, ...body });
  return {
    start: (b = {}) => track("start", b),
    progress: (b) => track("progress", b),
    attempt: (b) => track("attempt", b),
    complete: (b = {}) => track("complete", b),
    feedback: (b) => track("feedback", b),
    // a screen's narration: fetched with the Bearer header (an <audio> element cannot send it),
    // played from a blob: URL the caller revokes
    narration: async (screenId) => {
      const response = await session.raw(`/embed/api/course/narration/${screenId}?id=${courseId}`);
      if (!response.ok) throw new Error("narration unavailable");
      return URL.createObjectURL(await response.blob());
    },
  };
}
