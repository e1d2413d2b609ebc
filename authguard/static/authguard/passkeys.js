/*
 * authguard passkeys: the browser side of WebAuthn for authguard's JSON API.
 * No dependencies, no build step, no CDN. Include it with
 *   <script src="{% static 'authguard/passkeys.js' %}" defer></script>
 * and describe what to do with data- attributes; templates need no inline script (strict CSP friendly).
 *
 * A ceremony is a container element:
 *
 *   <div data-authguard-passkey="register | authenticate | login"
 *        data-options-url="/authguard/api/passkeys/options"   POST: answers the JSON options (+ "status")
 *        data-verify-url="/authguard/api/passkeys"            POST: receives credential.toJSON()
 *        data-done-url="/next/page"                           optional: where to go on success (else reload)
 *        data-csrf-token="..."                                optional: else the page's csrfmiddlewaretoken
 *                                                             input, else the "csrftoken" cookie
 *        data-message-cancelled="..."                         optional, translated: shown when the user
 *                                                             cancels or the browser times out
 *        data-message-unsupported="..."                       optional, translated: no WebAuthn here
 *        data-message-exists="..."                            optional, translated: this authenticator
 *                                                             already holds a passkey of the account
 *        data-message-unavailable="..."                       optional, translated: the server's answer
 *                                                             was not authguard's JSON (a proxy's error
 *                                                             page): else data-message-failed
 *        data-message-denied="..."                            optional, translated: shown instead of the
 *                                                             server's message when it refuses ("denied",
 *                                                             e.g. a passwordless sign-in from a place too
 *                                                             risky even for a passkey): say what to do next
 *        data-message-failed="...">                           optional, translated: any other failure
 *     <input data-authguard-name>       register only, optional: the passkey's name, sent as "name"
 *     <button data-authguard-start>     starts the ceremony (disabled while it runs)
 *     <p data-authguard-error hidden>   receives error messages (role="alert" recommended)
 *   </div>
 *
 * Modes:
 *   register      navigator.credentials.create() from the creation options (api/passkeys/options,
 *                 api/passkeys). Success: HTTP 201 "ok".
 *   authenticate  navigator.credentials.get() for step-up, re-verification or a held order's confirmation
 *                 (api/step-up/passkey/options + api/step-up/passkey, or
 *                 api/confirmations/<id>/passkey/options + api/confirmations/<id>/passkey).
 *                 Success: HTTP 200 with status "ok" or "confirmed".
 *   login         passwordless, usernameless sign-in (api/login/passkey/options + api/login/passkey). If the
 *                 container holds (or is) a form with <input autocomplete="username webauthn">, the browser's
 *                 autofill offers passkeys as soon as the page loads (conditional mediation); the
 *                 data-authguard-start button asks explicitly. The autofill request fails silently (an
 *                 authenticator without a passkey for the site answers it at once, a browser may time it out:
 *                 neither is the person's doing); only a passkey the server then refuses is reported.
 *
 * Events, dispatched on the container (bubbling): "authguard:passkey-done" (detail: the JSON answer) before
 * navigating, "authguard:passkey-error" (detail: {message, code}). Call event.preventDefault() on
 * "authguard:passkey-done" to stay on the page.
 *
 * Window API (for pages that want to drive it themselves): window.authguardPasskeys = {register,
 * authenticate, login, scan, toBase64url, fromBase64url}; scan() wires containers added after the page loaded.
 */
(function () {
  "use strict";

  var DEFAULT_CANCELLED = "The passkey request was cancelled or timed out. Please try again.";
  var DEFAULT_UNSUPPORTED = "This browser cannot use passkeys.";
  var DEFAULT_FAILED = "Something went wrong. Please try again.";

  // -- base64url --------------------------------------------------------------------------------------

  function toBase64url(buffer) {
    var bytes = new Uint8Array(buffer);
    var binary = "";
    for (var i = 0; i < bytes.length; i++) {
      binary += String.fromCharCode(bytes[i]);
    }
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function fromBase64url(text) {
    var base64 = String(text).replace(/-/g, "+").replace(/_/g, "/");
    while (base64.length % 4) {
      base64 += "=";
    }
    var binary = atob(base64);
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) {
      bytes[i] = binary.charCodeAt(i);
    }
    return bytes.buffer;
  }

  // -- options: JSON -> WebAuthn dictionaries ---------------------------------------------------------

  function stripStatus(json) {
    var copy = {};
    Object.keys(json).forEach(function (key) {
      if (key !== "status") {
        copy[key] = json[key];
      }
    });
    return copy;
  }

  function descriptors(list) {
    return (list || []).map(function (item) {
      var out = { type: item.type || "public-key", id: fromBase64url(item.id) };
      if (item.transports) {
        out.transports = item.transports;
      }
      return out;
    });
  }

  function creationOptions(json) {
    json = stripStatus(json);
    if (window.PublicKeyCredential && typeof PublicKeyCredential.parseCreationOptionsFromJSON === "function") {
      return PublicKeyCredential.parseCreationOptionsFromJSON(json);
    }
    var options = Object.assign({}, json);
    options.challenge = fromBase64url(json.challenge);
    options.user = Object.assign({}, json.user, { id: fromBase64url(json.user.id) });
    options.excludeCredentials = descriptors(json.excludeCredentials);
    return options;
  }

  function requestOptions(json) {
    json = stripStatus(json);
    if (window.PublicKeyCredential && typeof PublicKeyCredential.parseRequestOptionsFromJSON === "function") {
      return PublicKeyCredential.parseRequestOptionsFromJSON(json);
    }
    var options = Object.assign({}, json);
    options.challenge = fromBase64url(json.challenge);
    options.allowCredentials = descriptors(json.allowCredentials);
    return options;
  }

  // -- credentials: WebAuthn -> JSON (PublicKeyCredential.toJSON() or the same shape by hand) ------------

  function credentialJSON(credential) {
    if (typeof credential.toJSON === "function") {
      try {
        return credential.toJSON();
      } catch (error) {
        // Some browsers ship a toJSON that throws for some authenticators: fall back below.
      }
    }
    var response = credential.response;
    var json = {
      id: credential.id,
      rawId: toBase64url(credential.rawId),
      type: credential.type,
      authenticatorAttachment: credential.authenticatorAttachment || null,
      clientExtensionResults: credential.getClientExtensionResults ? credential.getClientExtensionResults() : {},
      response: { clientDataJSON: toBase64url(response.clientDataJSON) }
    };
    if (response.attestationObject) {
      json.response.attestationObject = toBase64url(response.attestationObject);
      json.response.transports = response.getTransports ? response.getTransports() : [];
      if (response.getAuthenticatorData) {
        json.response.authenticatorData = toBase64url(response.getAuthenticatorData());
      }
      if (response.getPublicKeyAlgorithm) {
        json.response.publicKeyAlgorithm = response.getPublicKeyAlgorithm();
      }
    } else {
      json.response.authenticatorData = toBase64url(response.authenticatorData);
      json.response.signature = toBase64url(response.signature);
      json.response.userHandle = response.userHandle ? toBase64url(response.userHandle) : null;
    }
    return json;
  }

  // -- HTTP ------------------------------------------------------------------------------------------------

  function csrfToken(element) {
    if (element && element.dataset.csrfToken) {
      return element.dataset.csrfToken;
    }
    var input = document.querySelector("input[name=csrfmiddlewaretoken]");
    if (input && input.value) {
      return input.value;
    }
    var match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  function ApiError(message, code, body) {
    this.message = message;
    this.code = code || "error";
    this.body = body || {};
  }

  function unavailableMessage(element) {
    var data = element ? element.dataset : {};
    return data.messageUnavailable || data.messageFailed || DEFAULT_FAILED;
  }

  function post(url, body, element) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "X-CSRFToken": csrfToken(element),
        "X-Requested-With": "XMLHttpRequest"
      },
      body: JSON.stringify(body || {})
    }).then(function (response) {
      return response.json().catch(function () {
        return null;
      }).then(function (json) {
        if (json === null || typeof json !== "object") {
          // Not authguard's answer (a proxy's error page, say): never a success, and shown in the page's
          // language (the data- attributes), not in this script's English.
          throw new ApiError(unavailableMessage(element), "unavailable", {});
        }
        if (!response.ok) {
          var fallback = (element && element.dataset.messageFailed) || DEFAULT_FAILED;
          throw new ApiError(json.message || fallback, json.code || json.status, json);
        }
        return json;
      });
    });
  }

  // -- ceremonies ------------------------------------------------------------------------------------------

  function supported() {
    return !!(window.PublicKeyCredential && navigator.credentials);
  }

  /** Register a passkey: returns a Promise of the server's JSON answer. */
  function register(optionsUrl, verifyUrl, extra, element) {
    return post(optionsUrl, {}, element).then(function (json) {
      return navigator.credentials.create({ publicKey: creationOptions(json) });
    }).then(function (credential) {
      return post(verifyUrl, Object.assign(credentialJSON(credential), extra || {}), element);
    });
  }

  /** Prove a passkey (step-up, re-verification, confirmation): a Promise of the server's JSON answer. */
  function authenticate(optionsUrl, verifyUrl, element, mediation, signal) {
    var ceremony = post(optionsUrl, {}, element).then(function (json) {
      var request = { publicKey: requestOptions(json) };
      if (mediation) {
        request.mediation = mediation;
      }
      if (signal) {
        request.signal = signal;
      }
      return navigator.credentials.get(request);
    }).then(function (credential) {
      return post(verifyUrl, credentialJSON(credential), element).catch(function (error) {
        if (error instanceof ApiError) {
          error.afterChoice = true; // the person chose a passkey: its refusal is theirs to read
        }
        throw error;
      });
    });
    if (mediation === "conditional") {
      // The button waits for all of it (wire): the server keeps one pending challenge per purpose, and
      // both the autofill's options request and its answer (once the person picked a passkey) use it.
      element.authguardAutofill = ceremony;
    }
    return ceremony;
  }

  /** Passwordless login; mediation "conditional" for autofill, undefined for an explicit prompt. */
  function login(optionsUrl, verifyUrl, element, mediation, signal) {
    return authenticate(optionsUrl, verifyUrl, element, mediation, signal);
  }

  // -- wiring by data- attributes --------------------------------------------------------------------------

  function showError(element, message, code) {
    var target = element.querySelector("[data-authguard-error]");
    if (target) {
      target.textContent = message;
      target.hidden = false;
    }
    element.dispatchEvent(new CustomEvent("authguard:passkey-error", {
      bubbles: true, detail: { message: message, code: code }
    }));
  }

  function clearError(element) {
    var target = element.querySelector("[data-authguard-error]");
    if (target) {
      target.textContent = "";
      target.hidden = true;
    }
  }

  function browserMessage(element, error) {
    if (error instanceof ApiError) {
      if (error.code === "denied" && element.dataset.messageDenied) {
        return element.dataset.messageDenied;
      }
      return error.message;
    }
    if (error && (error.name === "NotAllowedError" || error.name === "AbortError")) {
      return element.dataset.messageCancelled || DEFAULT_CANCELLED;
    }
    if (error && error.name === "InvalidStateError") {
      // excludeCredentials matched: this authenticator already holds a passkey for the account.
      return element.dataset.messageExists || DEFAULT_FAILED;
    }
    return element.dataset.messageFailed || DEFAULT_FAILED;
  }

  function done(element, answer) {
    var event = new CustomEvent("authguard:passkey-done", { bubbles: true, cancelable: true, detail: answer });
    if (!element.dispatchEvent(event)) {
      return;
    }
    var target = element.dataset.doneUrl;
    if (target && target.charAt(0) === "/" && target.charAt(1) !== "/" && target.charAt(1) !== "\\") {
      window.location.assign(target);
    } else {
      window.location.reload();
    }
  }

  function run(element, start, mediation, signal) {
    var mode = element.dataset.authguardPasskey;
    var optionsUrl = element.dataset.optionsUrl;
    var verifyUrl = element.dataset.verifyUrl;
    if (!supported()) {
      showError(element, element.dataset.messageUnsupported || DEFAULT_UNSUPPORTED, "unsupported");
      return Promise.resolve();
    }
    clearError(element);
    if (start) {
      start.disabled = true;
    }
    var ceremony;
    if (mode === "register") {
      var nameInput = element.querySelector("[data-authguard-name]");
      var extra = nameInput && nameInput.value ? { name: nameInput.value } : {};
      ceremony = register(optionsUrl, verifyUrl, extra, element);
    } else {
      ceremony = authenticate(optionsUrl, verifyUrl, element, mediation, signal);
    }
    return ceremony.then(function (answer) {
      done(element, answer);
    }, function (error) {
      if (mediation === "conditional" && !(error instanceof ApiError && error.afterChoice)) {
        // The autofill request ended without the person choosing a passkey the server then refused: the
        // explicit button took over (AbortError), the authenticator holds no passkey for this site, the
        // options could not be fetched, or the browser timed the request out. Nothing to tell the person
        // (issue 16: a red "cancelled or timed out" before they did anything); the button still works.
        return;
      }
      showError(element, browserMessage(element, error), error && error.code);
    }).then(function () {
      if (start) {
        start.disabled = false;
      }
    });
  }

  function wire(element) {
    if (element.dataset.authguardWired) {
      return;
    }
    element.dataset.authguardWired = "1";
    var start = element.querySelector("[data-authguard-start]");
    var conditional = null;
    var asked = false;
    if (element.dataset.authguardPasskey === "login") {
      var autofill = element.querySelector("input[autocomplete~='webauthn']");
      if (autofill && supported() && typeof PublicKeyCredential.isConditionalMediationAvailable === "function") {
        PublicKeyCredential.isConditionalMediationAvailable().then(function (available) {
          // Not once the button was pressed: a late autofill request would replace the button's pending
          // challenge on the server (one per purpose) and the button's answer would find none.
          if (available && !asked) {
            conditional = new AbortController();
            run(element, null, "conditional", conditional.signal);
          }
        });
      }
    }
    if (start) {
      start.addEventListener("click", function (event) {
        event.preventDefault();
        asked = true;
        if (conditional) {
          conditional.abort();
          conditional = null;
        }
        // The autofill's options request, or its answer when the authenticator already gave one, would
        // reach the server after the button's options and replace or use up its challenge: ask only once
        // the autofill's ceremony has ended (the abort ends it at once unless its answer is on its way).
        var pending = element.authguardAutofill || Promise.resolve(null);
        element.authguardAutofill = null;
        start.disabled = true;
        pending.then(function (answer) {
          if (answer) {
            start.disabled = false; // the autofill's passkey was accepted: done() already took over
          } else {
            run(element, start);
          }
        }, function () {
          run(element, start);
        });
      });
    }
  }

  function wireAll() {
    var elements = document.querySelectorAll("[data-authguard-passkey]");
    for (var i = 0; i < elements.length; i++) {
      wire(elements[i]);
    }
  }

  window.authguardPasskeys = {
    register: register,
    authenticate: authenticate,
    login: login,
    scan: wireAll,
    toBase64url: toBase64url,
    fromBase64url: fromBase64url
  };

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", wireAll);
  } else {
    wireAll();
  }
})();
