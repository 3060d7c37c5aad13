// What a relying-party page does with the HiPKI local service (docs/hipki.md):
// probe /p11Image.bmp, GetUserCert and MakeSignature (PKCS7 over a server nonce) through
// the popup, then let the server verify.
"use strict";
var HIPKI = document.getElementById("hipki").textContent;
var reader = null;

function show(id, text) { document.getElementById(id).textContent = text; }
function hex(n) { return "0x" + (n >>> 0).toString(16).toUpperCase(); }

// The BMP's bytes from 54 up to the first zero are the /pkcs11info JSON.
function probe() {
  return fetch(HIPKI + "/p11Image.bmp?t=" + Date.now()).then(function (r) { return r.arrayBuffer(); })
    .then(function (buffer) {
      var bytes = new Uint8Array(buffer, 54);
      var end = bytes.indexOf(0);
      var info = JSON.parse(new TextDecoder().decode(bytes.subarray(0, end < 0 ? bytes.length : end)));
      if (info.ret_code === 0x76000031 || info.ret_code === 0x7600000F) {
        document.getElementById("trust").hidden = false;
        throw new Error("untrusted site " + hex(info.ret_code) + ": open " + HIPKI + "/addDomain?domain=" + location.hostname);
      }
      if (info.ret_code !== 0) { throw new Error("service error " + hex(info.ret_code)); }
      var slot = info.slots.filter(function (s) { return s.token && typeof s.token === "object"; })[0];
      if (!slot) { throw new Error("no card " + hex(0x76000006)); }
      reader = slot.slotDescription;
      show("service", "version " + info.serverVersion + ", card " + slot.token.serialNumber + " in " + reader);
      return info;
    });
}

// One request per popup: getTbs, then the request, then the answer.
function popupCall(request) {
  return new Promise(function (resolve, reject) {
    var popup = window.open(HIPKI + "/popupForm", "hipki" + Date.now(), "width=420,height=320");
    if (!popup) { reject(new Error("popup blocked")); return; }
    var asked = false;
    var timer = window.setTimeout(function () {
      if (!asked) { finish(); reject(new Error("the service popup did not answer")); }
    }, 3500);
    function finish() { window.clearTimeout(timer); window.removeEventListener("message", onMessage); }
    function onMessage(event) {
      if (event.origin !== HIPKI) { return; }
      var data = JSON.parse(event.data);
      if (data.func === "getTbs") {
        asked = true;
        window.clearTimeout(timer);
        popup.postMessage(JSON.stringify(request), HIPKI);
        return;
      }
      finish();
      resolve(data);
    }
    window.addEventListener("message", onMessage);
  });
}

// The service asks its user to trust this site (/addDomain in a popup).
document.getElementById("trust").onclick = function () {
  window.open(HIPKI + "/addDomain?domain=" + encodeURIComponent(location.hostname), "hipki-trust", "width=420,height=320");
  window.addEventListener("message", function onTrust(event) {
    if (event.origin !== HIPKI) { return; }
    var answer = JSON.parse(event.data);
    if (answer.func !== "addDomain") { return; }
    window.removeEventListener("message", onTrust);
    show("service", answer.ret_code === 0 ? "site trusted" : "not trusted " + hex(answer.ret_code));
    document.getElementById("trust").hidden = answer.ret_code === 0;
  });
};

document.getElementById("read").onclick = function () {
  show("result", "");
  probe().then(function () {
    return popupCall({func: "GetUserCert", slotDescription: reader});
  }).then(function (info) {
    if (info.ret_code !== 0) { throw new Error("GetUserCert failed " + hex(info.ret_code)); }
    var slot = info.slots.filter(function (s) { return s.slotDescription === reader; })[0];
    var cert = slot.token.certs.filter(function (c) { return c.usage === "digitalSignature"; })[0];
    show("cert", "certificate " + cert.sn + ", ID ending " + cert.subjectID);
  }).catch(function (e) { show("result", "error: " + e.message); });
};

document.getElementById("login").onclick = function () {
  show("result", "signing...");
  var nonce;
  fetch("/nonce", {method: "POST"}).then(function (r) { return r.json(); }).then(function (n) {
    nonce = n.nonce;
    return popupCall({
      func: "MakeSignature", signatureType: "PKCS7", tbs: nonce, tbsEncoding: "NONE", hashAlgorithm: "SHA256",
      withSigningTime: "true", nonce: nonce, withCardSN: "true",
      pin: document.getElementById("pin").value, slotDescription: reader || "__NotExistedTag__"
    });
  }).then(function (answer) {
    if (answer.ret_code !== 0) {
      throw new Error("sign failed " + hex(answer.ret_code) + " last_error " + hex(answer.last_error) + ": " + answer.message);
    }
    return fetch("/verify", {
      method: "POST", headers: {"Content-Type": "application/json"},
      body: JSON.stringify({nonce: nonce, signature: answer.signature, nationalId: document.getElementById("national-id").value})
    }).then(function (r) { return r.json(); });
  }).then(function (verdict) {
    show("result", verdict.ok ? "logged in: " + verdict.name : "rejected: " + verdict.reason);
  }).catch(function (e) { show("result", "error: " + e.message); });
};
