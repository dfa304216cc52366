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
