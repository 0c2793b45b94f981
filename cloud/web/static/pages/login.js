import { _, homeOf, loadCatalogue, me, prefsOf, setLanguageCookie, setTokens, showError } from "../app.js";

await loadCatalogue();
document.body.dataset.ready = "true";

for (const button of document.querySelectorAll("[data-lang]")) {
  button.addEventListener("click", () => {
    setLanguageCookie(button.dataset.lang);
    location.reload();
  });
}

document.getElementById("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  const response = await fetch("/api/v1/auth/token", { method: "POST", body: new URLSearchParams(form) });
  if (!response.ok) {
    const box = document.getElementById("error");
    box.textContent = response.status === 429 ? _("Too many failed attempts; wait a few minutes and try again.")
      : _("Wrong user name or password.");
    box.hidden = false;
    document.getElementById("password").focus();
    return;
  }
  setTokens(await response.json());
  try {
    const user = await me();
    const stored = prefsOf(user.username);
    // The user's own language choice wins over the browser's, from the first page after signing in.
    if (localStorage.getItem(`vb.prefs.${user.username}`)) setLanguageCookie(stored.lang);
    location.assign(homeOf(user));
  } catch (error) {
    showError(error);
  }
});
