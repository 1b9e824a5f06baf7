// firelane page chrome: log out through the API (POST /auth/logout), then back to the login page.
(function () {
  document.querySelectorAll("form.fl-logout").forEach(function (form) {
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      fetch("/auth/logout", {method: "POST", credentials: "same-origin"}).finally(function () {
        window.location.assign("/login");
      });
    });
  });
})();
