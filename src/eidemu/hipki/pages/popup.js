// The popup side of the getTbs exchange (docs/hipki.md, "The popup protocol"):
// 1. post '{"func":"getTbs"}' to the opener (only to the site the server named);
// 2. take the first answer from that site: the request JSON;
// 3. call this service's endpoint with it, with the one-time ticket of this popup;
// 4. post the raw answer back to the opener and close.
"use strict";
(function () {
  var config = JSON.parse(document.getElementById("config").textContent);
  var statusLine = document.getElementById("status");
  var done = false;

  function reply(text) {
    if (done) { return; }
    done = true;
    statusLine.textContent = "Done.";
    if (window.opener) { window.opener.postMessage(text, config.origin); }
    window.setTimeout(function () { window.close(); }, 50);
  }

  function errorText(func, code, message) {
    return JSON.stringify({func: func, ret_code: code, last_error: 0, message: message});
  }

  function call(request, raw) {
    var target = config.funcs[request.func];
    if (!target) {
      reply(errorText(request.func || "unknown", 0x7600000E, "unknown func"));
      return;
    }
    var url = "/" + target + (request.func === "GetUserCert" ? "?withcert=true" : "");
    var body = target === "pkcs11info" ? "" : "tbsPackage=" + encodeURIComponent(raw);
    statusLine.textContent = "Working with the card...";
    fetch(url, {
      method: "POST",
      headers: {"Content-Type": "application/x-www-form-urlencoded", "X-HiPKI-Ticket": config.ticket},
      body: body
    }).then(function (r) { return r.text(); }).then(function (text) {
      var answer = JSON.parse(text);
      if (answer.ret_code === 0x76000998) { askPin(request); return; }
      reply(text);
    }).catch(function (e) {
      reply(errorText(target, 0x7600000D, "the service did not answer: " + e));
    });
  }

  function askPin(request) {
    var form = document.getElementById("pin-form");
    statusLine.textContent = "The page asks for a signature with your card.";
    form.style.display = "block";
    document.getElementById("pin").focus();
    form.onsubmit = function (event) {
      event.preventDefault();
      form.style.display = "none";
      request.pin = document.getElementById("pin").value;
      document.getElementById("pin").value = "";
      call(request, JSON.stringify(request));
    };
    document.getElementById("pin-cancel").onclick = function () {
      form.style.display = "none";
      reply(errorText(config.funcs[request.func] || "unknown", 0x76000999, "cancelled by the user"));
    };
  }

  if (config.error) {
    reply(JSON.stringify(config.error));
    return;
  }
  window.addEventListener("message", function (event) {
    if (done || event.origin !== config.origin || event.source !== window.opener) { return; }
    if (typeof event.data !== "string") { return; }
    var request;
    try {
      request = JSON.parse(event.data);
    } catch (e) {
      reply(errorText("unknown", 0x7600000B, "the request is not JSON"));
      return;
    }
    if (request === null || typeof request !== "object" || request.func === "getTbs") { return; }
    call(request, event.data);
  });
  if (window.opener) {
    window.opener.postMessage('{"func":"getTbs"}', config.origin);
  } else {
    statusLine.textContent = "Open this page from a web page with window.open.";
  }
}());
