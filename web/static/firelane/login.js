// firelane login: POST /auth/login as JSON (sets the session cookie), then go to `next`; errors shown inline.
(function () {
  var form = document.getElementById("fl-login");
  if (!form) { return; }
  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var error = document.getElementById("fl-login-error");
    error.textContent = "";
    fetch("/auth/login", {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "Accept": "application/json"},
      body: JSON.stringify({username: form.username.value, password: form.password.value})
    }).then(function (resp) {
      if (resp.ok) {
        var next = document.getElementById("fl-next").value || "/map";
        if (next.charAt(0) !== "/" || next.charAt(1) === "/") { next = "/map"; }
        window.location.assign(next);
        return null;
      }
      return resp.json().catch(function () { return {}; }).then(function (body) {
        error.textContent = body.description || ("登录失败 sign-in failed (" + resp.status + ")");
      });
    }).catch(function () { error.textContent = "网络错误 network error"; });
  });
})();
