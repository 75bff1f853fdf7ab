/*
 * Rampart passkeys (WebAuthn). No dependencies; served from /assets/webauthn.js.
 *
 * Buttons opt in with data attributes (they stay hidden unless this browser supports
 * passkeys, so every page works without JavaScript):
 *   data-webauthn="register" | "login"  which flow the button starts
 *   data-request="..."                  authorization request id, sent as "request"
 *   data-username-input="id"            input whose value is sent as "username" (login)
 *   data-error-target="id"              role="alert" element for error messages
 * The closest [data-webauthn-section] ancestor is shown when passkeys are supported;
 * [data-webauthn-unsupported] elements are shown when they are not.
 *
 * Protocol (JSON over fetch, CSRF token from <meta name="csrf-token"> in X-CSRF-Token):
 *   POST /webauthn/register/start  {request?}            -> CreationChallengeResponse
 *   POST /webauthn/register/finish RegisterPublicKeyCredential -> {redirect?}
 *   POST /webauthn/login/start     {request?, username?} -> RequestChallengeResponse
 *   POST /webauthn/login/finish    PublicKeyCredential   -> {redirect?}
 * Binary fields are base64url without padding (as webauthn-rs expects). An error answer
 * may carry {"error": "message for the user"}.
 */
(function () {
  "use strict";

  var ENDPOINTS = {
    register: ["/webauthn/register/start", "/webauthn/register/finish"],
    login: ["/webauthn/login/start", "/webauthn/login/finish"]
  };

  function b64urlToBuffer(value) {
    var b64 = String(value).replace(/-/g, "+").replace(/_/g, "/").replace(/=+$/, "");
    while (b64.length % 4) {
      b64 += "=";
    }
    var binary = atob(b64);
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) {
      bytes[i] = binary.charCodeAt(i);
    }
    return bytes.buffer;
  }

  function bufferToB64url(buffer) {
    var bytes = new Uint8Array(buffer);
    var binary = "";
    for (var i = 0; i < bytes.length; i++) {
      binary += String.fromCharCode(bytes[i]);
    }
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") || "" : "";
  }

  function UserError(message) {
    this.userMessage = message;
  }

  async function postJson(url, body) {
    var response;
    try {
      response = await fetch(url, {
        method: "POST",
        credentials: "same-origin",
        cache: "no-store",
        headers: {
          "Content-Type": "application/json",
          "Accept": "application/json",
          "X-CSRF-Token": csrfToken()
        },
        body: JSON.stringify(body)
      });
    } catch (e) {
      throw new UserError("Could not reach the server. Check your connection and try again.");
    }
    var data = null;
    try {
      data = await response.json();
    } catch (e) {
      data = null;
    }
    if (!response.ok) {
      var message = data && (data.error_description || data.error || data.message);
      throw new UserError(typeof message === "string" && message
        ? message
        : "The passkey could not be used (error " + response.status + "). Please try again.");
    }
    return data || {};
  }

  function descriptors(list) {
    return (list || []).map(function (credential) {
      var copy = Object.assign({}, credential);
      copy.id = b64urlToBuffer(credential.id);
      return copy;
    });
  }

  // Only plain values webauthn-rs understands; binary extension outputs are left out.
  function registrationExtensions(results) {
    var out = {};
    if (results && typeof results.appid === "boolean") {
      out.appid = results.appid;
    }
    if (results && results.credProps && typeof results.credProps.rk === "boolean") {
      out.credProps = { rk: results.credProps.rk };
    }
    return out;
  }

  function authenticationExtensions(results) {
    var out = {};
    if (results && typeof results.appid === "boolean") {
      out.appid = results.appid;
    }
    return out;
  }

  async function register(button) {
    var urls = ENDPOINTS.register;
    var start = {};
    if (button.dataset.request) {
      start.request = button.dataset.request;
    }
    var options = await postJson(urls[0], start);
    var publicKey = options.publicKey;
    if (!publicKey) {
      throw new UserError("The server sent an invalid passkey request.");
    }
    publicKey.challenge = b64urlToBuffer(publicKey.challenge);
    publicKey.user = Object.assign({}, publicKey.user, { id: b64urlToBuffer(publicKey.user.id) });
    if (publicKey.excludeCredentials) {
      publicKey.excludeCredentials = descriptors(publicKey.excludeCredentials);
    }
    var credential = await navigator.credentials.create({ publicKey: publicKey });
    if (!credential) {
      throw new UserError("No passkey was created.");
    }
    var response = credential.response;
    var payload = {
      id: credential.id,
      rawId: bufferToB64url(credential.rawId),
      type: credential.type,
      response: {
        attestationObject: bufferToB64url(response.attestationObject),
        clientDataJSON: bufferToB64url(response.clientDataJSON)
      },
      extensions: registrationExtensions(credential.getClientExtensionResults())
    };
    if (typeof response.getTransports === "function") {
      payload.response.transports = response.getTransports();
    }
    return postJson(urls[1], payload);
  }

  async function login(button) {
    var urls = ENDPOINTS.login;
    var start = {};
    if (button.dataset.request) {
      start.request = button.dataset.request;
    }
    if (button.dataset.usernameInput) {
      var input = document.getElementById(button.dataset.usernameInput);
      if (input && input.value.trim()) {
        start.username = input.value.trim();
      }
    }
    var options = await postJson(urls[0], start);
    var publicKey = options.publicKey;
    if (!publicKey) {
      throw new UserError("The server sent an invalid passkey request.");
    }
    publicKey.challenge = b64urlToBuffer(publicKey.challenge);
    publicKey.allowCredentials = descriptors(publicKey.allowCredentials);
    // options.mediation ("conditional") is for autofill, not for a button press: ignored.
    var credential = await navigator.credentials.get({ publicKey: publicKey });
    if (!credential) {
      throw new UserError("No passkey was selected.");
    }
    var response = credential.response;
    return postJson(urls[1], {
      id: credential.id,
      rawId: bufferToB64url(credential.rawId),
      type: credential.type,
      response: {
        authenticatorData: bufferToB64url(response.authenticatorData),
        clientDataJSON: bufferToB64url(response.clientDataJSON),
        signature: bufferToB64url(response.signature),
        userHandle: response.userHandle ? bufferToB64url(response.userHandle) : null
      },
      extensions: authenticationExtensions(credential.getClientExtensionResults())
    });
  }

  function messageFor(error, kind) {
    if (error instanceof UserError) {
      return error.userMessage;
    }
    switch (error && error.name) {
      case "NotAllowedError":
        return "The passkey request was cancelled or timed out. Please try again.";
      case "InvalidStateError":
        return kind === "register"
          ? "This device already has a passkey for your account."
          : "This passkey cannot be used here.";
      case "SecurityError":
        return "Passkeys cannot be used on this site address.";
      case "NotSupportedError":
        return "This device does not support the kind of passkey requested.";
      case "AbortError":
        return "The passkey request was cancelled.";
      default:
        return "Something went wrong with the passkey. Please try again.";
    }
  }

  function showError(button, message) {
    var target = button.dataset.errorTarget
      ? document.getElementById(button.dataset.errorTarget)
      : document.querySelector('[role="alert"]');
    if (target) {
      target.textContent = message;
    }
  }

  function clearError(button) {
    var target = button.dataset.errorTarget && document.getElementById(button.dataset.errorTarget);
    if (target) {
      target.textContent = "";
    }
  }

  function follow(redirect) {
    if (typeof redirect === "string" && redirect) {
      var url = new URL(redirect, window.location.href);
      if (url.protocol === "https:" || url.protocol === "http:") {
        window.location.assign(url.href);
        return;
      }
    }
    window.location.reload();
  }

  async function run(button) {
    var kind = button.dataset.webauthn;
    var flow = kind === "register" ? register : kind === "login" ? login : null;
    if (!flow || button.getAttribute("aria-busy") === "true") {
      return;
    }
    button.setAttribute("aria-busy", "true");
    button.disabled = true;
    clearError(button);
    try {
      var answer = await flow(button);
      follow(answer && answer.redirect);
    } catch (error) {
      showError(button, messageFor(error, kind));
      button.disabled = false;
      button.removeAttribute("aria-busy");
    }
  }

  function init() {
    var supported = typeof window.PublicKeyCredential === "function" &&
      !!navigator.credentials && typeof navigator.credentials.create === "function";
    var buttons = document.querySelectorAll("[data-webauthn]");
    var i;
    if (!supported) {
      var notes = document.querySelectorAll("[data-webauthn-unsupported]");
      for (i = 0; i < notes.length; i++) {
        notes[i].hidden = false;
      }
      return;
    }
    for (i = 0; i < buttons.length; i++) {
      var button = buttons[i];
      var section = button.closest("[data-webauthn-section]") || button;
      section.hidden = false;
      button.addEventListener("click", function (event) {
        event.preventDefault();
        run(event.currentTarget);
      });
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
