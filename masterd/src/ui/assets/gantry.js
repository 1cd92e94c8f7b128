// Gantry's UI script: keeps each page live and runs its actions through the public APIs.
// Plain JavaScript, no build step. Pages are complete without it (read-only).
(function () {
  "use strict";
  // Errors are collected for the browser tests (and visible in the console as usual).
  window.__gantryErrors = [];
  window.addEventListener("error", function (e) { window.__gantryErrors.push(String(e.message)); });
  window.addEventListener("unhandledrejection", function (e) { window.__gantryErrors.push(String(e.reason)); });

  var live, flashEl, connEl;
  var refreshing = false, pending = false, lost = false, source = null;

  function flash(text, kind) {
    if (!flashEl) return;
    if (!text) { flashEl.hidden = true; return; }
    flashEl.textContent = text;
    flashEl.className = "flash " + (kind || "ok");
    flashEl.hidden = false;
  }

  function banner(text, kind) {
    if (!connEl) return;
    if (!text) { connEl.hidden = true; return; }
    connEl.textContent = text;
    connEl.className = "conn " + kind;
    connEl.hidden = false;
  }

  // Re-renders the live part of this page (one request at a time, the last change wins).
  function refresh() {
    if (!live) return;
    if (refreshing) { pending = true; return; }
    refreshing = true;
    fetch(location.pathname + location.search, { headers: { "X-Gantry-Fragment": "1" }, credentials: "same-origin" })
      .then(function (r) { return r.ok || r.status === 404 ? r.text() : null; })
      .then(function (html) { if (html !== null) live.innerHTML = html; })
      .catch(function () { /* the connection banner says so */ })
      .then(function () {
        refreshing = false;
        if (pending) { pending = false; refresh(); }
      });
  }

  function connect() {
    source = new EventSource("/ui/events");
    source.addEventListener("hello", function () {
      if (lost) {
        lost = false;
        banner("Reconnected to the master", "ok");
        setTimeout(function () { if (!lost) banner(null); }, 4000);
        refresh();
      }
    });
    source.addEventListener("change", refresh);
    source.onerror = function () {
      lost = true;
      banner("Lost the connection to the master; reconnecting…", "bad");
      if (source.readyState === EventSource.CLOSED) setTimeout(connect, 2000);
    };
  }

  // The API's message from an error answer: Marathon {message, details}, Chronos {message}.
  function errorText(status, body) {
    if (body && typeof body === "object" && body.message) return body.message;
    if (typeof body === "string" && body) return body;
    return "HTTP " + status;
  }

  function call(method, url, body) {
    var opts = { method: method, credentials: "same-origin", headers: {} };
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    return fetch(url, opts).then(function (r) {
      return r.text().then(function (t) {
        var parsed = t;
        try { parsed = t ? JSON.parse(t) : null; } catch (e) { /* plain text */ }
        return { ok: r.ok, status: r.status, body: parsed };
      });
    });
  }

  function clearErrors(form) {
    form.querySelectorAll(".err").forEach(function (e) { e.textContent = ""; });
    form.querySelectorAll(".invalid").forEach(function (e) { e.classList.remove("invalid"); });
  }

  // Marathon reports field errors as Play-JSON codes; the code is kept after the words.
  var CODES = {
    "error.min": "too small", "error.max": "too large", "error.pattern": "has characters that are not allowed",
    "error.path.missing": "is required", "error.minLength": "must not be empty", "error.maxLength": "is too long",
    "error.expected.jsnumber": "must be a number", "error.expected.jsstring": "must be a string",
    "error.expected.jsarray": "must be a list", "error.expected.jsobject": "must be an object"
  };

  function words(text) { return CODES[text] ? CODES[text] + " (" + text + ")" : text; }

  function showError(form, path, text) {
    text = words(text);
    var el = form.querySelector('.err[data-for="' + path + '"]');
    var input = form.querySelector('[data-path="' + path + '"]');
    if (!el) el = form.querySelector('.err[data-for=""]');
    if (el) el.textContent = (el.textContent ? el.textContent + "; " : "") + text;
    if (input) input.classList.add("invalid");
  }

  // Shows an error answer next to the fields it names (Marathon's details[].path; for Chronos
  // the field named in the message), else under the JSON box.
  function showAnswer(form, res) {
    var b = res.body;
    var placed = false;
    if (b && Array.isArray(b.details)) {
      b.details.forEach(function (d) {
        var path = d.path || "";
        (d.errors || [d.message || ""]).forEach(function (e) { showError(form, path, e); placed = true; });
      });
    }
    var msg = errorText(res.status, b);
    if (!placed) {
      var hit = null;
      form.querySelectorAll("[data-path]").forEach(function (i) {
        if (!hit && msg.indexOf(i.name) >= 0) hit = i.getAttribute("data-path");
      });
      showError(form, hit || "", msg);
    }
    flash(msg, "bad");
  }

  function formBody(form) {
    var body = {};
    var json = form.querySelector('textarea[name="json"]');
    if (json && json.value.trim()) body = JSON.parse(json.value);
    form.querySelectorAll("input[data-path]").forEach(function (i) {
      if (i.value === "") return;
      var key = i.getAttribute("data-path").slice(1);
      var t = i.getAttribute("data-type");
      body[key] = t === "number" ? Number(i.value)
        : t === "list" ? i.value.split(",").map(function (s) { return s.trim(); }).filter(Boolean)
        : i.value;
    });
    return body;
  }

  function onSubmit(ev) {
    var form = ev.target.closest("form[data-api]");
    if (!form) return;
    ev.preventDefault();
    clearErrors(form);
    var body;
    try { body = formBody(form); } catch (e) { showError(form, "", "not JSON: " + e.message); return; }
    var api = form.getAttribute("data-api");
    if (form.hasAttribute("data-dependent-api") && body.parents && body.parents.length) {
      api = form.getAttribute("data-dependent-api");
      delete body.schedule;
    }
    var parts = api.split(" ");
    call(parts[0], parts[1], body).then(function (res) {
      if (!res.ok) { showAnswer(form, res); return; }
      var what = body.id || body.name || "";
      flash((parts[0] === "POST" && what ? "Created " + what : "Saved") + " (" + res.status + ")", "ok");
      refresh();
    }).catch(function (e) { flash("The master did not answer: " + e.message, "bad"); });
  }

  function toggleJob(btn) {
    var name = btn.getAttribute("data-toggle-job");
    call("GET", "/v1/scheduler/job/" + encodeURIComponent(name)).then(function (res) {
      if (!res.ok) { flash(errorText(res.status, res.body), "bad"); return; }
      var job = res.body;
      job.disabled = !job.disabled;
      var url = job.parents && job.parents.length ? "/v1/scheduler/dependency" : "/v1/scheduler/iso8601";
      return call("POST", url, job).then(function (r) {
        if (!r.ok) flash(errorText(r.status, r.body), "bad");
        else { flash((job.disabled ? "Disabled " : "Enabled ") + name, "ok"); refresh(); }
      });
    });
  }

  function onClick(ev) {
    var btn = ev.target.closest("button");
    if (!btn) return;
    if (btn.hasAttribute("data-toggle-job")) { toggleJob(btn); return; }
    if (btn.hasAttribute("data-log-tail")) { tail(btn.closest("section.log")); return; }
    if (btn.hasAttribute("data-log-follow")) { follow(btn.closest("section.log"), btn); return; }
    if (!btn.hasAttribute("data-method")) return;
    var confirmText = btn.getAttribute("data-confirm");
    if (confirmText && !window.confirm(confirmText)) return;
    call(btn.getAttribute("data-method"), btn.getAttribute("data-url")).then(function (res) {
      if (!res.ok) { flash(errorText(res.status, res.body), "bad"); return; }
      flash(btn.getAttribute("data-done") || btn.textContent.trim() + ": done", "ok");
      var then = btn.getAttribute("data-then");
      if (then) location.href = then; else refresh();
    }).catch(function (e) { flash("The master did not answer: " + e.message, "bad"); });
  }

  // Logs: tail reads the last 16 KiB; follow polls from where the last read ended until the
  // task has ended and nothing more comes.
  function readLog(section, offset, length) {
    var url = section.getAttribute("data-log") + "?path=" + encodeURIComponent(section.getAttribute("data-path")) +
      "&offset=" + offset + (length ? "&length=" + length : "");
    return fetch(url, { credentials: "same-origin" }).then(function (r) {
      var terminal = r.headers.get("x-gantry-task-terminal") === "true";
      return r.json().then(function (j) { return { ok: r.ok, body: j, terminal: terminal }; });
    });
  }

  function setLogState(section, text) { section.querySelector(".logstate").textContent = text ? " " + text : ""; }

  function tail(section) {
    return readLog(section, -1).then(function (size) {
      if (!size.ok) { setLogState(section, errorText(0, size.body)); return; }
      var start = Math.max(0, size.body.offset - 16384);
      return readLog(section, start, 16384).then(function (res) {
        section.querySelector(".logtext").textContent = res.body.data || "";
        section.setAttribute("data-next", res.body.next_offset);
        setLogState(section, res.body.data ? "" : "(empty)");
      });
    }).catch(function (e) { setLogState(section, "cannot read: " + e.message); });
  }

  function follow(section, btn) {
    if (section.__follow) {
      clearInterval(section.__follow); section.__follow = null;
      btn.textContent = "Follow"; setLogState(section, ""); return;
    }
    btn.textContent = "Stop";
    var start = section.hasAttribute("data-next") ? Promise.resolve() : tail(section);
    start.then(function () {
      setLogState(section, "following…");
      section.__follow = setInterval(function () {
        readLog(section, section.getAttribute("data-next") || 0, 65536).then(function (res) {
          if (!res.ok) return;
          var pre = section.querySelector(".logtext");
          if (res.body.data) { pre.textContent += res.body.data; pre.scrollTop = pre.scrollHeight; }
          section.setAttribute("data-next", res.body.next_offset);
          if (res.terminal && !res.body.data) { clearInterval(section.__follow); section.__follow = null; btn.textContent = "Follow"; setLogState(section, "(the task has ended)"); }
        }).catch(function () { /* try again next tick */ });
      }, 1000);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    live = document.getElementById("live");
    flashEl = document.getElementById("flash");
    connEl = document.getElementById("conn");
    document.addEventListener("submit", onSubmit);
    document.addEventListener("click", onClick);
    connect();
    // A page left (or kept in the back/forward cache) gives its event stream back at once:
    // browsers allow only six connections to one host, and a stream held by a hidden page
    // would starve the next one.
    window.addEventListener("pagehide", function () { if (source) { source.close(); source = null; } });
    window.addEventListener("pageshow", function (e) { if (e.persisted && !source) { connect(); refresh(); } });
    // Relative times ("in ~3 minutes") age even when nothing changes.
    setInterval(refresh, 15000);
    document.querySelectorAll("section.log").forEach(function (s) { tail(s); });
  });
})();
