/* Tianbao web chat: a small, dependency-free client for /webchat/api.
 *
 * Every user-visible string comes from the labels object the server injects
 * (<script type="application/json" id="tb-labels">); this file holds none.
 * Written in conservative ES2017 (no optional chaining / nullish coalescing)
 * so it runs in the older Chromium WebViews found on cheap Android phones.
 */
(function () {
  "use strict";

  // ---------------------------------------------------------------- config
  function readJson(id) {
    var el = document.getElementById(id);
    if (!el) return {};
    try {
      return JSON.parse(el.textContent || "{}") || {};
    } catch (e) {
      return {};
    }
  }

  var L = readJson("tb-labels");
  var CFG = readJson("tb-config");
  var API = String(CFG.api_base || "/webchat/api").replace(/\/+$/, "");
  var MAX_PHOTO = Number(CFG.max_photo_bytes) || 10 * 1024 * 1024;
  var CHAT_ID_RE = /^[A-Za-z0-9_-]{1,64}$/;
  var POLL_MS = 2500;
  var POLL_HIDDEN_MS = 15000;
  var POLL_MAX_MS = 30000;
  var POST_TIMEOUT_MS = 45000;
  var GET_TIMEOUT_MS = 20000;
  var UPLOAD_TIMEOUT_MS = 180000;
  var USER_LOG_MAX = 300;
  var STORE_PREFIX = "tianbao.webchat.";

  /** A label by key, with {name} placeholders filled in; falls back to the key. */
  function t(key, vars) {
    var s = Object.prototype.hasOwnProperty.call(L, key) ? String(L[key]) : key;
    if (vars) {
      s = s.replace(/\{(\w+)\}/g, function (m, name) {
        return Object.prototype.hasOwnProperty.call(vars, name) ? String(vars[name]) : m;
      });
    }
    return s;
  }

  // --------------------------------------------------------------- storage
  var memoryStore = {};
  var store = {
    get: function (key) {
      try {
        var v = window.localStorage.getItem(STORE_PREFIX + key);
        return v === null ? null : v;
      } catch (e) {
        return Object.prototype.hasOwnProperty.call(memoryStore, key) ? memoryStore[key] : null;
      }
    },
    set: function (key, value) {
      memoryStore[key] = value;
      try {
        window.localStorage.setItem(STORE_PREFIX + key, value);
        return true;
      } catch (e) {
        return false;
      }
    },
    remove: function (key) {
      delete memoryStore[key];
      try {
        window.localStorage.removeItem(STORE_PREFIX + key);
      } catch (e) {
        /* ignore */
      }
    },
  };

  /** The id of one input (22 random URL-safe characters): a resend after a dropped connection
   *  carries the same one, and the server answers it again instead of running it twice. */
  function newClientId() {
    var alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    var bytes = new Uint8Array(22);
    if (window.crypto && window.crypto.getRandomValues) {
      window.crypto.getRandomValues(bytes);
    } else {
      for (var i = 0; i < bytes.length; i++) bytes[i] = Math.floor(Math.random() * 256);
    }
    var id = "";
    for (var j = 0; j < bytes.length; j++) id += alphabet.charAt(bytes[j] & 63);
    return id;
  }

  // ------------------------------------------------------------------ DOM
  function $(id) {
    return document.getElementById(id);
  }

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  var ui = {
    app: $("app"),
    status: $("status"),
    statusText: document.querySelector("#status .status-text"),
    banner: $("banner"),
    log: $("log"),
    logInner: $("log-inner"),
    intro: $("log-intro"),
    introLoading: $("intro-loading"),
    newPill: $("new-pill"),
    dock: $("dock"),
    phoneForm: $("phone-prompt"),
    phoneLabel: document.querySelector("#phone-prompt .phone-label"),
    phoneInput: $("phone-input"),
    phoneOk: $("phone-ok"),
    phoneCancel: $("phone-cancel"),
    phoneError: $("phone-error"),
    replyKb: $("reply-kb"),
    kbToggle: $("kb-toggle"),
    composer: $("composer"),
    input: $("composer-input"),
    photoInput: $("photo-input"),
    photoBtn: $("photo-btn"),
    sendBtn: $("send-btn"),
  };

  // -------------------------------------------------- safe rich-text render
  var SAFE_PROTOCOLS = { "http:": 1, "https:": 1, "mailto:": 1, "tel:": 1 };

  /** An absolute URL string when `raw` is an http(s)/mailto/tel or relative URL, else null. */
  function safeUrl(raw) {
    if (raw === undefined || raw === null) return null;
    var s = String(raw).trim();
    if (!s) return null;
    var u;
    try {
      u = new URL(s, window.location.href);
    } catch (e) {
      return null;
    }
    return SAFE_PROTOCOLS[u.protocol] ? u.href : null;
  }

  var ENTITIES = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'", nbsp: "\u00a0" };

  function decodeEntities(s) {
    return s.replace(/&(#[xX][0-9a-fA-F]{1,6}|#[0-9]{1,7}|[a-zA-Z]{2,8});/g, function (m, body) {
      if (body.charAt(0) === "#") {
        var code = body.charAt(1) === "x" || body.charAt(1) === "X"
          ? parseInt(body.slice(2), 16)
          : parseInt(body.slice(1), 10);
        if (!code || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) return m;
        try {
          return String.fromCodePoint(code);
        } catch (e) {
          return m;
        }
      }
      var named = ENTITIES[body.toLowerCase()];
      return named === undefined ? m : named;
    });
  }

  var RICH_TAGS = { b: 1, strong: 1, i: 1, em: 1, u: 1, s: 1, code: 1, pre: 1, a: 1, br: 1 };
  var TAG_RE = /<(\/?)([a-zA-Z][a-zA-Z0-9]*)((?:\s+[a-zA-Z_:][-a-zA-Z0-9_:.]*(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s"'=<>`]+))?)*)\s*(\/?)>/g;
  var HREF_RE = /(?:^|\s)href\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+))/i;

  /**
   * Telegram-style HTML -> a DocumentFragment built with createElement/textContent only.
   * Allowed: b strong i em u s code pre a[href] br; every other tag is shown as literal text.
   * Newlines become <br> (inside <pre> they are kept, CSS preserves them).
   */
  function renderRich(src) {
    var frag = document.createDocumentFragment();
    var text = String(src === undefined || src === null ? "" : src).replace(/\r\n?/g, "\n");
    var stack = [{ node: frag, tag: null }];
    var preDepth = 0;

    function top() {
      return stack[stack.length - 1].node;
    }

    function emitText(raw) {
      if (!raw) return;
      var decoded = decodeEntities(raw);
      if (preDepth > 0) {
        top().appendChild(document.createTextNode(decoded));
        return;
      }
      var parts = decoded.split("\n");
      for (var i = 0; i < parts.length; i++) {
        if (i > 0) top().appendChild(document.createElement("br"));
        if (parts[i]) top().appendChild(document.createTextNode(parts[i]));
      }
    }

    var last = 0;
    var m;
    TAG_RE.lastIndex = 0;
    while ((m = TAG_RE.exec(text)) !== null) {
      var tag = m[2].toLowerCase();
      if (!RICH_TAGS[tag]) continue; // left in place, emitted later as literal text
      emitText(text.slice(last, m.index));
      last = TAG_RE.lastIndex;
      var closing = m[1] === "/";
      if (tag === "br") {
        if (!closing) top().appendChild(document.createElement("br"));
        continue;
      }
      if (closing) {
        for (var k = stack.length - 1; k > 0; k--) {
          if (stack[k].tag === tag) {
            while (stack.length > k) {
              if (stack[stack.length - 1].tag === "pre") preDepth--;
              stack.pop();
            }
            break;
          }
        }
        continue;
      }
      if (m[4] === "/") continue; // <b/> and friends: nothing to wrap
      var node;
      if (tag === "a") {
        var hm = HREF_RE.exec(m[3] || "");
        var href = hm ? safeUrl(decodeEntities(hm[1] !== undefined ? hm[1] : hm[2] !== undefined ? hm[2] : hm[3])) : null;
        if (href) {
          node = document.createElement("a");
          node.href = href;
          node.target = "_blank";
          node.rel = "noopener noreferrer nofollow";
        } else {
          node = el("span", "link-disabled");
        }
      } else {
        node = document.createElement(tag);
      }
      top().appendChild(node);
      stack.push({ node: node, tag: tag });
      if (tag === "pre") preDepth++;
    }
    emitText(text.slice(last));
    return frag;
  }

  // ------------------------------------------------------------- state
  var state = {
    chatId: null,
    highestId: 0,
    bots: {}, // id -> {el, sig}
    kbFromId: -1, // id of the message that set the current reply keyboard
    keyboard: null, // current reply keyboard rows or null
    kbCollapsed: false,
    userLog: [], // persisted local echo of the user's own messages
    pending: 0, // requests waiting for the bot
    botRev: 0,
    unread: 0,
    pollTimer: null,
    polling: false,
    stream: null, // the EventSource while one is open or reconnecting
    streaming: false, // the stream is live: polling rests
    streamFailures: 0,
    streamWatchdog: null,
    pollFailures: 0,
    started: false,
    online: null,
  };

  function idNum(id) {
    var n = Number(id);
    return isFinite(n) ? n : 0;
  }

  function bump() {
    state.botRev++;
    document.body.setAttribute("data-bot-rev", String(state.botRev));
  }

  // -------------------------------------------------------------- status / banner
  function setStatus(kind) {
    if (state.online === kind) return;
    state.online = kind;
    var key = {
      online: "status_online",
      connecting: "status_connecting",
      reconnecting: "status_reconnecting",
      offline: "status_offline",
    }[kind] || "status_connecting";
    ui.status.setAttribute("data-state", kind);
    ui.statusText.textContent = t(key);
  }

  var bannerTimer = null;

  /** Shows an error/info line above the conversation; `action` = {label, run} adds a button. */
  function showBanner(message, action, sticky) {
    clearTimeout(bannerTimer);
    clear(ui.banner);
    ui.banner.appendChild(el("span", "banner-text", message));
    if (action) {
      var b = el("button", "banner-btn", action.label);
      b.type = "button";
      b.addEventListener("click", function () {
        hideBanner();
        action.run();
      });
      ui.banner.appendChild(b);
    }
    var x = el("button", "banner-close", t("dismiss"));
    x.type = "button";
    x.addEventListener("click", hideBanner);
    ui.banner.appendChild(x);
    ui.banner.hidden = false;
    if (!sticky && !action) bannerTimer = setTimeout(hideBanner, 7000);
  }

  function hideBanner() {
    clearTimeout(bannerTimer);
    ui.banner.hidden = true;
    clear(ui.banner);
  }

  // -------------------------------------------------------------- scrolling
  function nearBottom() {
    return ui.log.scrollHeight - ui.log.scrollTop - ui.log.clientHeight < 96;
  }

  function scrollToBottom(smooth) {
    var top = ui.log.scrollHeight;
    if (smooth && "scrollBehavior" in document.documentElement.style) {
      ui.log.scrollTo({ top: top, behavior: "smooth" });
    } else {
      ui.log.scrollTop = top;
    }
    ui.newPill.hidden = true;
  }

  ui.log.addEventListener("scroll", function () {
    if (!ui.newPill.hidden && nearBottom()) ui.newPill.hidden = true;
  }, { passive: true });

  ui.newPill.addEventListener("click", function () {
    scrollToBottom(true);
  });

  /** Runs a DOM change, then keeps the view pinned to the bottom if it was there. */
  function withScroll(change, forceBottom, announce) {
    var stick = forceBottom || nearBottom();
    change();
    if (stick) {
      scrollToBottom(false);
    } else if (announce) {
      ui.newPill.hidden = false;
    }
  }

  function watchMedia(img) {
    img.addEventListener("load", function () {
      if (nearBottom() || ui.log.scrollHeight - ui.log.scrollTop - ui.log.clientHeight < img.offsetHeight + 120) {
        scrollToBottom(false);
      }
    });
  }

  // -------------------------------------------------------------- typing indicator
  var typingEl = (function () {
    var row = el("div", "msg typing");
    row.setAttribute("role", "status");
    row.setAttribute("aria-label", t("typing"));
    var bubble = el("div", "bubble");
    for (var i = 0; i < 3; i++) bubble.appendChild(el("span", "dot"));
    row.appendChild(bubble);
    row.hidden = true;
    ui.log.appendChild(row);
    return row;
  })();

  function setPending(delta) {
    state.pending = Math.max(0, state.pending + delta);
    var show = state.pending > 0;
    if (show === !typingEl.hidden) return;
    withScroll(function () {
      typingEl.hidden = !show;
    }, false, false);
  }

  // -------------------------------------------------------------- bot messages
  function messageSig(msg) {
    try {
      return JSON.stringify([msg.text, msg.buttons, msg.document, msg.photo]);
    } catch (e) {
      return String(Math.random());
    }
  }

  function buildInlineKeyboard(rows, msgEl) {
    var wrap = el("div", "ikb");
    for (var r = 0; r < rows.length; r++) {
      var row = rows[r];
      if (!row || !row.length) continue;
      var rowEl = el("div", "ikb-row");
      for (var c = 0; c < row.length; c++) {
        var spec = row[c] || {};
        var label = String(spec.text || "");
        var btn;
        if (spec.url) {
          var href = safeUrl(spec.url);
          btn = el(href ? "a" : "span", "ikb-btn ikb-link");
          if (href) {
            btn.href = href;
            btn.target = "_blank";
            btn.rel = "noopener noreferrer nofollow";
            btn.title = t("open_link");
          }
          btn.appendChild(el("span", "ikb-text", label));
          btn.appendChild(el("span", "ikb-ext", "\u2197")).setAttribute("aria-hidden", "true");
        } else {
          btn = el("button", "ikb-btn");
          btn.type = "button";
          btn.appendChild(el("span", "ikb-text", label));
          if (spec.callback_data !== undefined && spec.callback_data !== null) {
            btn.setAttribute("data-callback", String(spec.callback_data));
          } else {
            btn.disabled = true;
          }
        }
        rowEl.appendChild(btn);
      }
      wrap.appendChild(rowEl);
    }
    wrap.addEventListener("click", function (ev) {
      var target = ev.target.closest ? ev.target.closest("button.ikb-btn") : null;
      if (!target || target.disabled) return;
      if (msgEl.getAttribute("data-busy") === "1") return;
      var data = target.getAttribute("data-callback");
      if (data === null) return;
      msgEl.setAttribute("data-busy", "1");
      target.classList.add("busy");
      sendCallback(data, msgEl.getAttribute("data-id")).then(function () {
        msgEl.removeAttribute("data-busy");
        target.classList.remove("busy");
      });
    });
    return wrap;
  }

  function fillBotMessage(row, msg) {
    clear(row);
    var bubble = el("div", "bubble");
    if (msg.photo && safeUrl(msg.photo.url)) {
      var link = el("a", "photo-link");
      link.href = safeUrl(msg.photo.url);
      link.target = "_blank";
      link.rel = "noopener noreferrer";
      var img = el("img", "photo");
      img.alt = t("photo_alt");
      img.loading = "lazy";
      img.decoding = "async";
      img.src = link.href;
      watchMedia(img);
      link.appendChild(img);
      bubble.appendChild(link);
      bubble.classList.add("has-photo");
    }
    if (msg.document && safeUrl(msg.document.url)) {
      var chip = el("a", "doc-chip");
      chip.href = safeUrl(msg.document.url);
      chip.target = "_blank";
      chip.rel = "noopener noreferrer";
      var name = String(msg.document.name || "");
      if (name) chip.setAttribute("download", name);
      var icon = el("span", "doc-icon");
      icon.setAttribute("aria-hidden", "true");
      chip.appendChild(icon);
      var meta = el("span", "doc-meta");
      meta.appendChild(el("span", "doc-name", name || chip.href.split("/").pop()));
      meta.appendChild(el("span", "doc-action", t("download")));
      chip.appendChild(meta);
      bubble.appendChild(chip);
    }
    if (msg.text) {
      var body = el("div", "text");
      body.appendChild(renderRich(msg.text));
      bubble.appendChild(body);
    }
    row.appendChild(bubble);
    if (msg.buttons && msg.buttons.length) row.appendChild(buildInlineKeyboard(msg.buttons, row));
  }

  /** Where a bot message with this id belongs among the rendered rows. */
  function insertionPoint(id) {
    var kids = ui.logInner.children;
    for (var i = 0; i < kids.length; i++) {
      var k = kids[i];
      if (k.classList.contains("bot") && idNum(k.getAttribute("data-id")) > id) return k;
      if (k.classList.contains("user") && idNum(k.getAttribute("data-after")) >= id) return k;
    }
    return null;
  }

  /** Adds or updates one bot message; returns true when something visible changed. */
  function applyMessage(msg) {
    if (!msg || msg.id === undefined || msg.id === null) return false;
    var key = String(msg.id);
    var id = idNum(msg.id);
    var sig = messageSig(msg);
    var known = state.bots[key];
    var changed = false;
    if (known) {
      if (known.sig !== sig) {
        fillBotMessage(known.el, msg);
        known.sig = sig;
        known.el.classList.remove("flash");
        void known.el.offsetWidth; // restart the highlight animation
        known.el.classList.add("flash");
        changed = true;
      }
    } else {
      var row = el("div", "msg bot");
      row.setAttribute("data-id", key);
      fillBotMessage(row, msg);
      ui.logInner.insertBefore(row, insertionPoint(id));
      state.bots[key] = { el: row, sig: sig };
      changed = true;
    }
    if (!known || changed) {
      if (msg.keyboard !== null && msg.keyboard !== undefined && id >= state.kbFromId) {
        state.kbFromId = id;
        setKeyboard(msg.keyboard);
      }
    }
    if (id > state.highestId) state.highestId = id;
    if (changed) bump();
    return changed;
  }

  function applyMessages(list, forceBottom) {
    if (!list || !list.length) return;
    var fresh = 0;
    withScroll(function () {
      for (var i = 0; i < list.length; i++) {
        if (applyMessage(list[i])) fresh++;
      }
      if (fresh) hideIntro();
    }, forceBottom, true);
    if (fresh && document.hidden) {
      state.unread += fresh;
      document.title = "(" + state.unread + ") " + t("title");
    }
  }

  function hideIntro() {
    if (ui.introLoading && !ui.introLoading.hidden) ui.introLoading.hidden = true;
  }

  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) {
      state.unread = 0;
      document.title = t("title");
      pollSoon(0);
    }
  });

  // -------------------------------------------------------------- reply keyboard
  var LEADING_SYMBOL = (function () {
    try {
      return new RegExp("^[\\p{Extended_Pictographic}\\p{So}]", "u");
    } catch (e) {
      return /^[\u2190-\u2bff\ud83c-\ud83e]/;
    }
  })();

  /** Our phone/pin icon, unless the bot's label already starts with an emoji. */
  function addKbIcon(btn, label, cls) {
    if (label && LEADING_SYMBOL.test(label)) return;
    btn.appendChild(el("span", "rkb-icon " + cls)).setAttribute("aria-hidden", "true");
  }

  function setKeyboard(rows) {
    clear(ui.replyKb);
    if (!rows || !rows.length) {
      state.keyboard = null;
      ui.replyKb.hidden = true;
      ui.kbToggle.hidden = true;
      return;
    }
    state.keyboard = rows;
    state.kbCollapsed = false;
    for (var r = 0; r < rows.length; r++) {
      var row = rows[r];
      if (!row || !row.length) continue;
      var rowEl = el("div", "rkb-row");
      for (var c = 0; c < row.length; c++) {
        var spec = row[c] || {};
        var btn = el("button", "rkb-btn");
        btn.type = "button";
        var label = String(spec.text || "");
        if (spec.request_contact) {
          btn.classList.add("rkb-contact");
          addKbIcon(btn, label, "rkb-icon-phone");
          btn.appendChild(el("span", "rkb-text", label || t("share_phone")));
          btn.addEventListener("click", openPhonePrompt);
        } else if (spec.request_location) {
          btn.classList.add("rkb-location");
          addKbIcon(btn, label, "rkb-icon-pin");
          btn.appendChild(el("span", "rkb-text", label || t("share_location")));
          btn.addEventListener("click", shareLocation);
        } else {
          btn.appendChild(el("span", "rkb-text", label));
          btn.addEventListener("click", (function (value) {
            return function () {
              sendText(value);
            };
          })(label));
        }
        rowEl.appendChild(btn);
      }
      ui.replyKb.appendChild(rowEl);
    }
    renderKbVisibility();
  }

  function renderKbVisibility() {
    var has = !!state.keyboard;
    ui.kbToggle.hidden = !has;
    ui.replyKb.hidden = !has || state.kbCollapsed;
    ui.kbToggle.setAttribute("aria-expanded", has && !state.kbCollapsed ? "true" : "false");
    var label = t(state.kbCollapsed ? "keyboard_show" : "keyboard_hide");
    ui.kbToggle.setAttribute("aria-label", label);
    ui.kbToggle.title = label;
    ui.kbToggle.classList.toggle("active", has && !state.kbCollapsed);
  }

  ui.kbToggle.addEventListener("click", function () {
    withScroll(function () {
      state.kbCollapsed = !state.kbCollapsed;
      renderKbVisibility();
    }, false, false);
  });

  // -------------------------------------------------------------- user messages (local echo)
  function persistUserLog() {
    var log = state.userLog.slice(-USER_LOG_MAX);
    state.userLog = log;
    var data = log.map(function (e) {
      return {
        k: e.k,
        cid: e.cid,
        after: e.after,
        kind: e.kind,
        text: e.text,
        thumb: e.thumb || null,
        payload: e.status === "sent" ? null : e.payload || null,
        status: e.status === "sent" ? "sent" : "failed",
        error: e.status === "sent" ? null : e.error || null,
        reason: e.status === "sent" ? null : e.reason || null,
      };
    });
    if (!store.set(state.chatId + ".user", JSON.stringify(data))) {
      // Storage full: keep the words, drop the thumbnails.
      data.forEach(function (d) {
        d.thumb = null;
      });
      store.set(state.chatId + ".user", JSON.stringify(data.slice(-100)));
    }
  }

  function loadUserLog() {
    var raw = store.get(state.chatId + ".user");
    if (!raw) return [];
    try {
      var list = JSON.parse(raw);
      return Array.isArray(list) ? list.filter(function (e) {
        return e && typeof e.k === "string";
      }) : [];
    } catch (e) {
      return [];
    }
  }

  var localSeq = 0;

  function newUserEntry(kind, text, extra) {
    localSeq++;
    var entry = {
      k: Date.now().toString(36) + "-" + localSeq,
      cid: newClientId(),
      after: state.highestId,
      kind: kind,
      text: text,
      thumb: null,
      status: "sending",
      error: null,
    };
    if (extra) for (var key in extra) entry[key] = extra[key];
    state.userLog.push(entry);
    return entry;
  }

  function renderUserEntry(entry) {
    var row = entry.el || el("div", "msg user");
    entry.el = row;
    clear(row);
    row.setAttribute("data-after", String(entry.after));
    row.setAttribute("data-k", entry.k);
    row.setAttribute("data-status", entry.status);
    var bubble = el("div", "bubble");
    if (entry.kind === "photo") {
      bubble.classList.add("has-photo");
      var src = entry.objectUrl || entry.thumb;
      if (src) {
        var img = el("img", "photo");
        img.alt = t("photo_alt");
        img.src = src;
        watchMedia(img);
        bubble.appendChild(img);
      } else {
        bubble.appendChild(el("div", "text", t("sent_photo")));
      }
      if (entry.status === "sending") {
        var bar = el("div", "progress");
        var fill = el("span", "progress-fill");
        fill.style.width = Math.round((entry.progress || 0) * 100) + "%";
        bar.appendChild(fill);
        bar.setAttribute("aria-label", t("uploading"));
        bubble.appendChild(bar);
        entry.progressFill = fill;
      }
    } else {
      var body = el("div", "text");
      var parts = String(entry.text || "").split("\n");
      for (var i = 0; i < parts.length; i++) {
        if (i) body.appendChild(document.createElement("br"));
        body.appendChild(document.createTextNode(parts[i]));
      }
      bubble.appendChild(body);
    }
    row.appendChild(bubble);
    if (entry.status === "sending" || entry.status === "sent") {
      var line = el("div", "state", t(entry.status === "sent" ? "msg_sent" : "msg_sending"));
      row.appendChild(line);
    }
    if (entry.status === "failed") {
      var fail = el("div", "fail");
      fail.appendChild(el("span", "fail-icon", "!")).setAttribute("aria-hidden", "true");
      var failText = entry.reason || (entry.error ? t(entry.error, { max_mb: maxMb() }) : t("not_sent"));
      fail.appendChild(el("span", "fail-text", failText));
      if (entry.retry) {
        var again = el("button", "retry-btn", t("msg_failed_retry"));
        again.type = "button";
        again.addEventListener("click", function () {
          entry.retry();
        });
        fail.appendChild(again);
      }
      row.appendChild(fail);
    }
    return row;
  }

  function appendUserEntry(entry) {
    withScroll(function () {
      hideIntro();
      ui.logInner.appendChild(renderUserEntry(entry));
    }, true, false);
  }

  function markEntry(entry, status, errorKey, reason) {
    entry.status = status;
    entry.error = errorKey || null;
    entry.reason = reason || null; // the server's own words, when it gave them
    withScroll(function () {
      renderUserEntry(entry);
    }, false, false);
    persistUserLog();
  }

  /** Moves a retried message to the bottom, as if written now. */
  function moveEntryToEnd(entry) {
    entry.after = state.highestId;
    if (entry.el) {
      entry.el.setAttribute("data-after", String(entry.after));
      ui.logInner.appendChild(entry.el);
    }
    var i = state.userLog.indexOf(entry);
    if (i >= 0) {
      state.userLog.splice(i, 1);
      state.userLog.push(entry);
    }
  }

  // -------------------------------------------------------------- HTTP
  function ApiError(kind, status, detail) {
    this.kind = kind; // "network" | "http"
    this.status = status || 0;
    this.detail = detail || "";
  }

  function errorKey(err) {
    if (!err || err.kind === "network") return "network_error";
    if (err.status === 413) return "image_too_large";
    if (err.status === 429) return "rate_limited";
    if (err.status === 415) return "not_an_image";
    if (err.status === 400 || err.status === 422) return "request_invalid";
    return "server_error";
  }

  /** The server's explanation in the chat's language (why an upload was not kept, how long to wait
   *  after a limit), or "" where the page's own label says it better (413: the page knows its limit). */
  function serverReason(err) {
    if (!err || err.kind !== "http" || err.status === 413) return "";
    var detail = err.detail;
    return detail && typeof detail === "object" && typeof detail.message === "string" ? detail.message : "";
  }

  function errorText(err) {
    return serverReason(err) || t(errorKey(err), { max_mb: maxMb() });
  }

  function maxMb() {
    var mb = MAX_PHOTO / (1024 * 1024);
    return Math.round(mb * 10) / 10;
  }

  function chatUrl(path) {
    return API + "/" + encodeURIComponent(state.chatId) + path;
  }

  function request(method, url, body, timeoutMs) {
    var ctrl = typeof AbortController === "function" ? new AbortController() : null;
    var timer = ctrl ? setTimeout(function () { ctrl.abort(); }, timeoutMs) : null;
    var opts = {
      method: method,
      headers: { Accept: "application/json" },
      cache: "no-store",
      credentials: "same-origin",
    };
    if (ctrl) opts.signal = ctrl.signal;
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    return fetch(url, opts).then(
      function (res) {
        clearTimeout(timer);
        return res.text().then(function (raw) {
          var data = null;
          try {
            data = raw ? JSON.parse(raw) : {};
          } catch (e) {
            data = null;
          }
          if (res.status === 403) sessionLost();
          if (!res.ok) throw new ApiError("http", res.status, data && data.detail);
          if (data === null) throw new ApiError("http", res.status, "bad json");
          return data;
        });
      },
      function () {
        clearTimeout(timer);
        throw new ApiError("network");
      }
    );
  }

  /** The session no longer names this chat (cookie cleared or lapsed): ask the server for the
   *  browser's chat and reload into it; at most once a minute, so a browser refusing cookies shows
   *  the server's reason instead of reloading for ever. */
  var sessionRecovering = false;

  function sessionLost() {
    if (sessionRecovering) return;
    var last = Number(store.get("session_reload") || 0);
    if (Date.now() - last < 60000) return;
    sessionRecovering = true;
    store.set("session_reload", String(Date.now()));
    fetch(API + "/chats", { method: "POST", credentials: "same-origin", cache: "no-store" }).then(
      function () {
        window.location.reload();
      },
      function () {
        sessionRecovering = false;
      }
    );
  }

  function languageCode() {
    var lang = navigator.language || (navigator.languages && navigator.languages[0]) || CFG.lang || "";
    return String(lang).slice(0, 16); // the API caps language_code at 16 characters
  }

  /** POSTs one input; shows the typing indicator meanwhile and renders the replies. */
  var chain = Promise.resolve();

  function postInput(payload) {
    payload.language_code = languageCode();
    setPending(1);
    var job = chain.then(function () {
      return request("POST", chatUrl("/messages"), payload, POST_TIMEOUT_MS);
    });
    chain = job.then(noop, noop);
    return job.then(
      function (data) {
        setPending(-1);
        noteReachable();
        applyMessages(data && data.replies, false);
        return data;
      },
      function (err) {
        setPending(-1);
        throw err;
      }
    );
  }

  function noop() {}

  // -------------------------------------------------------------- sending
  /** Sends a message the user sees as their own bubble (text, contact, location). */
  function sendEntry(kind, text, payload) {
    var entry = newUserEntry(kind, text, { payload: payload });
    attachRetry(entry);
    appendUserEntry(entry);
    persistUserLog();
    deliverEntry(entry);
  }

  function sendText(value) {
    var text = String(value || "").replace(/\s+$/, "");
    if (!text.trim()) return;
    sendEntry("text", text, { text: text });
  }

  function attachRetry(entry) {
    if (!entry.payload && !entry.file) {
      entry.retry = null;
      return;
    }
    entry.retry = function () {
      moveEntryToEnd(entry);
      markEntry(entry, "sending");
      deliverEntry(entry);
    };
  }

  function deliverEntry(entry) {
    var job;
    if (entry.file) {
      entry.progress = 0;
      if (!entry.cid) entry.cid = newClientId();
      job = uploadPhoto(entry.file, entry.cid, function (fraction) {
        entry.progress = fraction;
        if (entry.progressFill) entry.progressFill.style.width = Math.round(fraction * 100) + "%";
      });
    } else {
      var payload = JSON.parse(JSON.stringify(entry.payload));
      if (!entry.cid) entry.cid = newClientId(); // an entry saved by an older page
      payload.client_id = entry.cid; // the same on every retry: the server runs it once
      job = postInput(payload);
    }
    job.then(
      function () {
        entry.file = null; // delivered: free the memory
        markEntry(entry, "sent");
      },
      function (err) {
        if (err.status === 413) entry.retry = null; // retrying cannot help
        markEntry(entry, "failed", errorKey(err), serverReason(err));
        if (err.kind === "network") noteNetworkTrouble();
      }
    );
  }

  /** Commands the page sends on its own (/start): no bubble; a banner offers a retry. */
  function sendSilent(text, clientId) {
    var cid = clientId || newClientId();
    return postInput({ text: text, client_id: cid }).then(noop, function (err) {
      if (err.kind === "network") noteNetworkTrouble();
      showBanner(errorText(err), {
        label: t("retry"),
        run: function () {
          sendSilent(text, cid);
        },
      }, true);
    });
  }

  /** An inline-button tap; message_id tells the server which message's button it was. */
  function sendCallback(data, messageId, clientId) {
    var cid = clientId || newClientId(); // a retry of this tap is the same tap
    var payload = { callback_data: data, client_id: cid };
    if (/^\d+$/.test(String(messageId || ""))) payload.message_id = Number(messageId);
    return postInput(payload).then(noop, function (err) {
      if (err.kind === "network") noteNetworkTrouble();
      showBanner(errorText(err), {
        label: t("retry"),
        run: function () {
          sendCallback(data, messageId, cid);
        },
      }, true);
    });
  }

  /** A request just succeeded: if polling was backing off, catch up now. */
  function noteReachable() {
    if (state.pollFailures > 0 || state.online !== "online") {
      state.pollFailures = 0;
      setStatus("online");
      pollSoon(0);
    }
  }

  function noteNetworkTrouble() {
    setStatus(navigator.onLine === false ? "offline" : "reconnecting");
    pollSoon(1500);
  }

  // -------------------------------------------------------------- composer
  var draftTimer = null;

  function autoGrow() {
    ui.input.style.height = "auto";
    var max = 140;
    ui.input.style.height = Math.min(ui.input.scrollHeight, max) + "px";
    ui.input.style.overflowY = ui.input.scrollHeight > max ? "auto" : "hidden";
    ui.sendBtn.disabled = !ui.input.value.trim();
  }

  ui.input.addEventListener("input", function () {
    autoGrow();
    clearTimeout(draftTimer);
    draftTimer = setTimeout(function () {
      if (ui.input.value) store.set(state.chatId + ".draft", ui.input.value);
      else store.remove(state.chatId + ".draft");
    }, 300);
  });

  ui.input.addEventListener("keydown", function (ev) {
    if (ev.key !== "Enter" || ev.shiftKey || ev.isComposing || ev.keyCode === 229) return;
    ev.preventDefault();
    submitComposer();
  });

  ui.composer.addEventListener("submit", function (ev) {
    ev.preventDefault();
    submitComposer();
  });

  function submitComposer() {
    var value = ui.input.value;
    if (!value.trim()) return;
    ui.input.value = "";
    store.remove(state.chatId + ".draft");
    autoGrow();
    sendText(value);
    ui.input.focus();
  }

  // -------------------------------------------------------------- phone prompt
  function openPhonePrompt() {
    ui.phoneError.hidden = true;
    ui.phoneInput.value = ui.phoneInput.value || store.get("phone") || "";
    withScroll(function () {
      ui.phoneForm.hidden = false;
    }, false, false);
    ui.phoneInput.focus();
    try {
      ui.phoneInput.setSelectionRange(ui.phoneInput.value.length, ui.phoneInput.value.length);
    } catch (e) {
      /* type=tel may refuse selection */
    }
  }

  function closePhonePrompt() {
    ui.phoneForm.hidden = true;
    ui.phoneError.hidden = true;
  }

  ui.phoneCancel.addEventListener("click", closePhonePrompt);
  ui.phoneForm.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var phone = ui.phoneInput.value.replace(/[\s\-().\u00a0]/g, "").replace(/^\uff0b/, "+");
    phone = phone.replace(/[\uff10-\uff19]/g, function (ch) {
      return String.fromCharCode(ch.charCodeAt(0) - 0xfee0); // full-width digits
    });
    if (!/^\+?\d{6,20}$/.test(phone)) {
      ui.phoneError.textContent = t("phone_invalid");
      ui.phoneError.hidden = false;
      ui.phoneInput.focus();
      return;
    }
    store.set("phone", phone);
    closePhonePrompt();
    sendEntry("contact", t("sent_phone", { phone: phone }), { contact: { phone_number: phone } });
  });

  // -------------------------------------------------------------- location
  var locating = false;

  function shareLocation() {
    if (locating) return;
    if (!navigator.geolocation) {
      showBanner(t("location_unsupported"));
      return;
    }
    locating = true;
    showBanner(t("locating"), null, true);
    navigator.geolocation.getCurrentPosition(
      function (pos) {
        locating = false;
        hideBanner();
        var lat = Math.round(pos.coords.latitude * 1e6) / 1e6;
        var lon = Math.round(pos.coords.longitude * 1e6) / 1e6;
        sendEntry("location", t("sent_location") + "\n" + lat.toFixed(5) + ", " + lon.toFixed(5), {
          location: { latitude: lat, longitude: lon },
        });
      },
      function (err) {
        locating = false;
        showBanner(t(err && err.code === 1 ? "location_denied" : "location_failed"));
      },
      { enableHighAccuracy: true, timeout: 20000, maximumAge: 60000 }
    );
  }

  // -------------------------------------------------------------- photos
  ui.photoBtn.addEventListener("click", function () {
    ui.photoInput.click();
  });

  ui.photoInput.addEventListener("change", function () {
    var file = ui.photoInput.files && ui.photoInput.files[0];
    ui.photoInput.value = ""; // picking the same file again must fire "change"
    if (!file) return;
    var looksImage = /^image\//.test(file.type || "") ||
      (!file.type && /\.(jpe?g|png|gif|webp|heic|heif|bmp)$/i.test(file.name || ""));
    if (!looksImage) {
      showBanner(t("not_an_image"));
      return;
    }
    if (file.size > MAX_PHOTO) {
      showBanner(t("image_too_large", { max_mb: maxMb() }));
      return;
    }
    sendPhoto(file);
  });

  function makeThumb(url) {
    return new Promise(function (resolve) {
      var img = new Image();
      img.onload = function () {
        try {
          var scale = Math.min(1, 360 / Math.max(img.naturalWidth, img.naturalHeight));
          var c = document.createElement("canvas");
          c.width = Math.max(1, Math.round(img.naturalWidth * scale));
          c.height = Math.max(1, Math.round(img.naturalHeight * scale));
          c.getContext("2d").drawImage(img, 0, 0, c.width, c.height);
          var data = c.toDataURL("image/jpeg", 0.7);
          resolve(data.length < 80000 ? data : null);
        } catch (e) {
          resolve(null);
        }
      };
      img.onerror = function () {
        resolve(null);
      };
      img.src = url;
    });
  }

  function sendPhoto(file) {
    var objectUrl = window.URL && URL.createObjectURL ? URL.createObjectURL(file) : null;
    var entry = newUserEntry("photo", "", { objectUrl: objectUrl, progress: 0, file: file });
    attachRetry(entry);
    appendUserEntry(entry);
    persistUserLog();
    if (objectUrl) {
      makeThumb(objectUrl).then(function (thumb) {
        entry.thumb = thumb;
        persistUserLog();
      });
    }
    deliverEntry(entry);
  }

  function uploadPhoto(file, clientId, onProgress) {
    setPending(1);
    var job = chain.then(function () {
      return new Promise(function (resolve, reject) {
        var form = new FormData();
        form.append("file", file, file.name || "photo.jpg");
        var xhr = new XMLHttpRequest();
        form.append("language_code", languageCode());
        form.append("client_id", clientId);
        xhr.open("POST", chatUrl("/photos"));
        xhr.timeout = UPLOAD_TIMEOUT_MS;
        xhr.setRequestHeader("Accept", "application/json");
        if (xhr.upload) {
          xhr.upload.onprogress = function (ev) {
            if (ev.lengthComputable && ev.total) onProgress(ev.loaded / ev.total);
          };
        }
        xhr.onload = function () {
          var data = null;
          try {
            data = JSON.parse(xhr.responseText || "{}");
          } catch (e) {
            data = null;
          }
          if (xhr.status === 403) sessionLost();
          if (xhr.status >= 200 && xhr.status < 300 && data) resolve(data);
          else reject(new ApiError("http", xhr.status, data && data.detail));
        };
        xhr.onerror = xhr.ontimeout = xhr.onabort = function () {
          reject(new ApiError("network"));
        };
        xhr.send(form);
      });
    });
    chain = job.then(noop, noop);
    return job.then(
      function (data) {
        setPending(-1);
        noteReachable();
        applyMessages(data && data.replies, false);
        return data;
      },
      function (err) {
        setPending(-1);
        throw err;
      }
    );
  }

  // -------------------------------------------------------------- server-sent events
  var STREAM_SILENCE_MS = 40000; // the server pings every 15 s: silence this long is a dead stream
  var STREAM_MAX_FAILURES = 4; // then this page polls for good (a proxy that cannot stream)

  function streamUrl() {
    return chatUrl("/events?after=" + encodeURIComponent(String(state.highestId)));
  }

  function watchStream() {
    clearTimeout(state.streamWatchdog);
    state.streamWatchdog = setTimeout(function () {
      streamFailed(true); // open but silent: a buffering proxy, or a half-dead connection
    }, STREAM_SILENCE_MS);
  }

  /** New messages by EventSource; polling stays the fallback while the stream is not live. */
  function startStream() {
    if (typeof window.EventSource !== "function" || state.stream || !state.chatId) return;
    if (state.streamFailures >= STREAM_MAX_FAILURES) return;
    var es;
    try {
      es = new EventSource(streamUrl());
    } catch (e) {
      state.streamFailures = STREAM_MAX_FAILURES;
      return;
    }
    state.stream = es;
    es.addEventListener("open", function () {
      state.streaming = true;
      state.pollFailures = 0;
      setStatus("online");
      clearTimeout(state.pollTimer); // the stream carries the news now
      watchStream();
    });
    es.addEventListener("message", function (ev) {
      watchStream();
      state.streamFailures = 0;
      var msg = null;
      try {
        msg = JSON.parse(ev.data);
      } catch (e) {
        msg = null;
      }
      if (msg) applyMessages([msg], false);
    });
    es.addEventListener("ping", function () {
      watchStream();
      state.streamFailures = 0;
    });
    es.addEventListener("error", function () {
      streamFailed(es.readyState === 2); // 2: CLOSED (refused, or not an event stream)
    });
  }

  function streamFailed(closed) {
    var wasLive = state.streaming;
    state.streaming = false;
    clearTimeout(state.streamWatchdog);
    if (wasLive || closed) state.streamFailures++;
    if (closed && state.stream) {
      state.stream.close();
      state.stream = null;
      // EventSource gave up: try a fresh one later, from the highest message seen meanwhile.
      setTimeout(startStream, Math.min(POLL_MAX_MS, 2000 * Math.pow(2, state.streamFailures)));
    }
    if (state.streamFailures >= STREAM_MAX_FAILURES && state.stream) {
      state.stream.close();
      state.stream = null;
    }
    pollSoon(0); // polling covers the gap (and is the fallback for good after repeated failures)
  }

  // -------------------------------------------------------------- polling
  function pollSoon(delay) {
    clearTimeout(state.pollTimer);
    if (state.streaming && delay > 0) return; // the live stream brings new messages
    state.pollTimer = setTimeout(poll, Math.max(0, delay));
  }

  function nextPollDelay() {
    if (state.pollFailures > 0) {
      var backoff = Math.min(POLL_MAX_MS, POLL_MS * Math.pow(2, state.pollFailures));
      return backoff * (0.8 + Math.random() * 0.4);
    }
    return document.hidden ? POLL_HIDDEN_MS : POLL_MS;
  }

  function fetchAfter(after) {
    return request("GET", chatUrl("/messages?after=" + encodeURIComponent(String(after))), undefined, GET_TIMEOUT_MS)
      .then(function (data) {
        return (data && data.messages) || [];
      });
  }

  function poll() {
    if (state.polling) return;
    state.polling = true;
    fetchAfter(state.highestId).then(
      function (messages) {
        state.pollFailures = 0;
        setStatus("online");
        applyMessages(messages, false);
      },
      function () {
        state.pollFailures++;
        setStatus(navigator.onLine === false ? "offline" : "reconnecting");
      }
    ).then(function () {
      state.polling = false;
      if (!state.streaming) pollSoon(nextPollDelay());
    });
  }

  window.addEventListener("online", function () {
    state.pollFailures = 0;
    setStatus("connecting");
    pollSoon(0);
  });
  window.addEventListener("offline", function () {
    setStatus("offline");
  });

  // -------------------------------------------------------------- viewport (soft keyboard)
  if (window.visualViewport) {
    var onViewport = function () {
      var stick = nearBottom();
      document.documentElement.style.setProperty("--app-h", window.visualViewport.height + "px");
      if (stick) scrollToBottom(false);
    };
    window.visualViewport.addEventListener("resize", onViewport);
    onViewport();
  }

  // -------------------------------------------------------------- start-up
  function applyStaticLabels() {
    document.title = t("title");
    ui.input.placeholder = t("placeholder");
    ui.input.setAttribute("aria-label", t("placeholder"));
    ui.sendBtn.textContent = t("send");
    ui.photoBtn.setAttribute("aria-label", t("upload_photo"));
    ui.photoBtn.title = t("upload_photo");
    ui.phoneLabel.textContent = t("phone_prompt");
    ui.phoneInput.placeholder = t("phone_placeholder");
    ui.phoneOk.textContent = t("phone_confirm");
    ui.phoneCancel.textContent = t("phone_cancel");
    ui.newPill.textContent = t("new_messages");
    renderKbVisibility();
  }

  /** Renders history (bot messages from the server + our own saved echoes) in order. */
  function renderHistory(messages) {
    messages = (messages || []).slice().sort(function (a, b) {
      return idNum(a.id) - idNum(b.id);
    });
    var log = state.userLog;
    var u = 0;
    withScroll(function () {
      for (var i = 0; i < messages.length; i++) {
        var id = idNum(messages[i].id);
        while (u < log.length && idNum(log[u].after) < id) {
          ui.logInner.appendChild(renderUserEntry(log[u]));
          u++;
        }
        applyMessage(messages[i]);
      }
      while (u < log.length) {
        ui.logInner.appendChild(renderUserEntry(log[u]));
        u++;
      }
      if (messages.length || log.length) hideIntro();
    }, true, false);
  }

  function init() {
    applyStaticLabels();
    setStatus("connecting");

    // The server names the page's chat (its session cookie, HttpOnly, came with the page): a chat id
    // picked here would open nothing.
    var given = String(CFG.chat_id || "");
    var isNew = CFG.chat_new === true;
    state.chatId = CHAT_ID_RE.test(given) ? given : "";
    store.set("chat_id", state.chatId);

    // Deep link: /chat?start=PAYLOAD -> "/start PAYLOAD", once; strip it from the URL first.
    var startPayload = null;
    try {
      var url = new URL(window.location.href);
      if (url.searchParams.has("start")) {
        startPayload = (url.searchParams.get("start") || "").trim();
        url.searchParams.delete("start");
        if (window.history && window.history.replaceState) {
          window.history.replaceState(window.history.state, "", url.pathname + url.search + url.hash);
        }
      }
    } catch (e) {
      startPayload = null;
    }

    state.userLog = loadUserLog();
    state.userLog.forEach(function (e) {
      if (e.status !== "sent") {
        e.status = "failed"; // nothing is in flight after a reload
        if (!e.error) e.error = "not_sent";
        attachRetry(e);
      }
    });

    var draft = store.get(state.chatId + ".draft");
    if (draft) ui.input.value = draft;
    autoGrow();

    fetchAfter(0).then(
      function (messages) {
        state.pollFailures = 0;
        setStatus("online");
        return { ok: true, messages: messages };
      },
      function () {
        state.pollFailures = 1;
        setStatus(navigator.onLine === false ? "offline" : "reconnecting");
        return { ok: false, messages: [] };
      }
    ).then(function (history) {
      ui.introLoading.hidden = true;
      renderHistory(history.messages);
      if (!history.messages.length && !state.userLog.length) {
        ui.introLoading.textContent = t("empty_chat");
        ui.introLoading.hidden = false;
      }
      if (startPayload) {
        sendSilent("/start " + startPayload);
      } else if (startPayload === "" || isNew || (history.ok && !history.messages.length && !state.userLog.length)) {
        sendSilent("/start");
      }
      state.started = true;
      document.body.setAttribute("data-ready", "1");
      pollSoon(history.ok ? POLL_MS : nextPollDelay());
      startStream();
    });
  }

  window.TianbaoChat = {
    renderRich: renderRich,
    safeUrl: safeUrl,
    chatId: function () {
      return state.chatId;
    },
    transport: function () {
      return state.streaming ? "sse" : "polling";
    },
  };

  init();
})();
