// The page shown for an invalid or expired link: a generic message, no detail.
const app = document.getElementById("app");
const p = document.createElement("p");
p.setAttribute("role", "alert");
p.className = "expired";
p.textContent = document.body.dataset.message || "This link is invalid or has expired.";
app.replaceChildren(p);
