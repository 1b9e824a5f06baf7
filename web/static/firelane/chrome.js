// firelane page chrome: log out through the API (POST /auth/logout); the phone menu and the list drawer.
(function () {
  document.querySelectorAll("form.fl-logout").forEach(function (form) {
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      fetch("/auth/logout", {method: "POST", credentials: "same-origin"}).finally(function () {
        window.location.assign("/login");
      });
    });
  });
  function toggle(button, cls) {
    if (!button) { return; }
    button.addEventListener("click", function () {
      var open = document.body.classList.toggle(cls);
      button.setAttribute("aria-expanded", open ? "true" : "false");
      document.dispatchEvent(new Event("firelane:layout"));
    });
  }
  toggle(document.getElementById("fl-menu-button"), "fl-menu-open");
  toggle(document.getElementById("fl-drawer-button"), "fl-drawer-open");
})();
