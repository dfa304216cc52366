// Kestrel Bank: a refused sign-in is explained on the form itself ("That user name and password
// don't match ..."); Chainlit also pops up a technical toast ("Unauthorized: credentialssignin"),
// which this removes.
(function () {
  const technical = /credentialssignin/i;
  function sweep(root) {
    root.querySelectorAll("[data-sonner-toast]").forEach(function (t) {
      if (technical.test(t.textContent || "")) t.remove();
    });
  }
  new MutationObserver(function () { sweep(document); })
    .observe(document.documentElement, { childList: true, subtree: true });
})();

// A conversation link that is not this customer's (or no longer exists): Chainlit would refuse
// the connection and show "Could not reach the server" until "New chat". Before the app starts
// (this script runs in <head>, ahead of Chainlit's deferred module), ask the server whether the
// signed-in customer may open it; if not, open a new conversation instead and say so plainly.
(function () {
  var NOTICE = "That conversation is not available. A new one has been opened for you.";
  var KEY = "kestrel-thread-unavailable";
  var m = window.location.pathname.match(/^\/thread\/([^/?#]+)\/?$/);
  function status(url) {
    try {
      var xhr = new XMLHttpRequest();
      xhr.open("GET", url, false); // synchronous on purpose: the app must not see this URL first
      xhr.withCredentials = true;
      xhr.send(null);
      return xhr.status;
    } catch (e) {
      return 0;
    }
  }
  if (m && status("/user") === 200 && status("/project/thread/" + encodeURIComponent(m[1])) !== 200) {
    window.history.replaceState(null, "", "/");
    try { window.sessionStorage.setItem(KEY, "1"); } catch (e) { /* private mode: notice only */ }
  }
  var show;
  try { show = window.sessionStorage.getItem(KEY) === "1"; window.sessionStorage.removeItem(KEY); } catch (e) { show = !!m; }
  if (!show) return;
  function notice() {
    if (!document.body) return setTimeout(notice, 50);
    var box = document.createElement("div");
    box.id = "kestrel-notice";
    box.setAttribute("role", "status");
    box.textContent = NOTICE;
    var close = document.createElement("button");
    close.type = "button";
    close.setAttribute("aria-label", "Close");
    close.textContent = "\u00d7";
    close.onclick = function () { box.remove(); };
    box.appendChild(close);
    document.body.appendChild(box);
  }
  notice();
})();
