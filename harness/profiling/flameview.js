// The flamegraph viewer: draws the frames of DATA (set just before this script)
// into #frames, and keeps the zoom, the search, the view and the orientation in
// the URL fragment. Frames are laid out in whole samples (a child starts at its
// parent's offset plus its elder siblings' samples), and pixels are computed
// from those integers only when drawing, so a zoomed frame's subtree always
// fits inside it, whatever the width.
(function () {
  'use strict';
  var NS = 'http://www.w3.org/2000/svg';
  var ROW = 17, MARGIN = 10, CHAR = 6.6, TOP = 118;
  var svg = document.documentElement.tagName === 'svg' ? document.documentElement
    : document.querySelector('svg');
  var $ = function (id) { return document.getElementById(id); };
  var frames = DATA.frames;  // [text, function, library, category, colour]
  var state = { view: 0, zoom: null, search: '', icicle: false };
  var drawn = [];  // the nodes of the drawn frames, by their data-i
  var views = DATA.views.map(buildView);

  function buildView(view) {
    var root = tree(view.stacks, view.label);
    var result = { spec: view, root: root, depth: place(root, 0, 0) };
    if (view.baseline) {
      result.base = tree(view.baseline, 'baseline');
      annotateDiff(root, result.base);
    }
    return result;
  }

  function tree(stacks, label) {
    var root = { f: -1, label: label, n: 0, kids: {}, parent: null };
    stacks.forEach(function (entry) {
      var node = root, count = entry[1];
      node.n += count;
      entry[0].forEach(function (f) {
        var kid = node.kids[f];
        if (!kid) { kid = node.kids[f] = { f: f, n: 0, kids: {}, parent: node }; }
        kid.n += count;
        node = kid;
      });
    });
    return root;
  }

  // Integer offsets, children in the order of their text; returns the depth.
  function place(node, x, d) {
    node.x = x; node.d = d;
    node.list = Object.keys(node.kids).map(function (k) { return node.kids[k]; })
      .sort(function (a, b) { return frames[a.f][0] < frames[b.f][0] ? -1 : 1; });
    var deepest = d, offset = x;
    node.list.forEach(function (kid) {
      deepest = Math.max(deepest, place(kid, offset, d + 1));
      offset += kid.n;
    });
    return deepest;
  }

  function annotateDiff(root, base) {
    (function walk(node, match) {
      node.base = match ? match.n : 0;
      node.list.forEach(function (kid) { walk(kid, match ? match.kids[kid.f] : null); });
    })(root, base);
  }

  function path(node) {
    var ids = [];
    for (; node.parent; node = node.parent) { ids.unshift(node.f); }
    return ids.join('.');
  }

  function find(view, text) {
    var node = view.root;
    (text ? text.split('.') : []).forEach(function (id) {
      if (node && node.kids[id]) { node = node.kids[id]; }
    });
    return node;
  }

  function name(node) { return node.f < 0 ? node.label : frames[node.f][0]; }
  function pct(a, b) { return b ? (100 * a / b).toFixed(2) + '%' : '-'; }

  // The window's width, less room for a vertical scroll bar.
  function width() {
    return Math.max(320, (window.innerWidth || 1220) - 20);
  }

  function colour(node) {
    if (node.f < 0) { return '#d8d8d0'; }
    var view = views[state.view];
    if (!view.base) { return frames[node.f][4]; }
    var delta = node.n / view.root.n - node.base / (view.base.n || 1);
    var strength = Math.min(1, Math.abs(delta) / (view.maxDelta || 1));
    var light = Math.round(255 - 175 * strength);
    return delta > 0 ? 'rgb(255,' + light + ',' + light + ')'
      : delta < 0 ? 'rgb(' + light + ',' + light + ',255)' : 'rgb(238,238,238)';
  }

  function maxDelta(view) {
    var most = 0;
    (function walk(node) {
      most = Math.max(most, Math.abs(node.n / view.root.n - node.base / (view.base.n || 1)));
      node.list.forEach(walk);
    })(view.root);
    return most;
  }

  // The search as a test of a frame number (each frame's text tested once):
  // null without a search, false for one that is not a regular expression.
  function matcher() {
    if (!state.search) { return null; }
    var re;
    try { re = new RegExp(state.search); } catch (e) { return false; }
    var hits = frames.map(function (f) { return re.test(f[0]); });
    return { test: function (node) { return node.f >= 0 && hits[node.f]; } };
  }

  function draw() {
    var view = views[state.view], zoom = state.zoom || view.root;
    if (view.base && view.maxDelta === undefined) { view.maxDelta = maxDelta(view); }
    var W = width(), scale = (W - 2 * MARGIN) / zoom.n;
    var group = $('frames');
    while (group.firstChild) { group.removeChild(group.firstChild); }
    drawn = [];
    var y = function (d) {
      return state.icicle ? TOP + d * ROW : TOP + (view.depth - d) * ROW;
    };
    for (var up = zoom.parent; up; up = up.parent) {  // callers: full width, dimmed
      group.appendChild(frame(up, MARGIN, W - 2 * MARGIN, y(up.d)));
    }
    (function walk(node) {
      var x = MARGIN + (node.x - zoom.x) * scale;
      group.appendChild(frame(node, x, node.n * scale, y(node.d), ''));
      node.list.forEach(walk);
    })(zoom);
    var height = TOP + (view.depth + 1) * ROW + 8;
    $('legend').setAttribute('transform', 'translate(0,' + height + ')');
    height += drawBaselineOnly(view, height + 28) + 34;
    svg.setAttribute('height', height);
    svg.setAttribute('width', W);
    $('background').setAttribute('height', height);
    paint();
    $('reset').disabled = zoom === view.root;
    $('orient').textContent = state.icicle ? 'Flame' : 'Icicle';
    Array.prototype.forEach.call(document.querySelectorAll('.view'), function (b, i) {
      b.className = i === state.view ? 'view on' : 'view';
    });
    details(zoom);
  }

  // Colours and classes of the drawn frames, and the matched share: all a new
  // search changes, so typing does not rebuild the frames.
  function paint() {
    var view = views[state.view], zoom = state.zoom || view.root, re = matcher();
    Array.prototype.forEach.call($('frames').childNodes, function (g) {
      var node = drawn[+g.getAttribute('data-i')], matched = re && re.test(node);
      // Only the zoomed frame's callers are drawn above its depth.
      g.setAttribute('class', 'f' + (node.d < zoom.d ? ' caller' : '') +
                     (matched ? ' match' : '') + diffClass(node));
      g.firstChild.setAttribute('fill', matched ? '#e600e6' : colour(node));
    });
    showMatched(view, zoom, re);
    writeHash();
  }

  function frame(node, x, w, y) {
    var g = document.createElementNS(NS, 'g'), text = name(node);
    g.setAttribute('data-path', path(node));
    g.setAttribute('data-frame', text);
    g.setAttribute('data-i', drawn.push(node) - 1);
    var rect = document.createElementNS(NS, 'rect');
    rect.setAttribute('x', x); rect.setAttribute('y', y);
    rect.setAttribute('width', w); rect.setAttribute('height', ROW - 1);
    rect.setAttribute('rx', 1.5);
    g.appendChild(rect);
    var fits = Math.floor((w - 6) / CHAR), label = node.f < 0 ? text : frames[node.f][1];
    if (fits >= 3) {
      var t = document.createElementNS(NS, 'text');
      t.setAttribute('x', (x + 3).toFixed(3)); t.setAttribute('y', y + ROW - 5);
      t.textContent = label.length <= fits ? label : label.slice(0, fits - 2) + '..';
      g.appendChild(t);
    }
    return g;
  }

  function diffClass(node) {
    var view = views[state.view];
    if (!view.base || node.f < 0) { return ''; }
    var delta = node.n / view.root.n - node.base / (view.base.n || 1);
    return delta > 0 ? ' grew' : delta < 0 ? ' shrank' : '';
  }

  function details(node) {
    var view = views[state.view], zoom = state.zoom || view.root, total = view.root.n;
    var parts;
    if (node.f < 0) {
      parts = [node.label, node.n + ' samples'];
    } else {
      var f = frames[node.f];
      parts = [f[1], f[2] || '(no library)', f[3], node.n + ' samples',
               pct(node.n, total) + ' of all', pct(node.n, zoom.n) + ' of the zoomed frame'];
    }
    if (view.spec.seconds_per_sample) {
      parts.push('about ' + (node.n * view.spec.seconds_per_sample).toPrecision(3) + ' s');
    }
    if (view.base) {
      parts.push('baseline ' + pct(node.base, view.base.n) + ' -> current ' +
                 pct(node.n, total) + ' of samples');
    }
    $('details').textContent = parts.join('  |  ');
  }

  // Samples under a matching frame, each counted once: below a match, nothing
  // more is added, so nested matches (recursion, a regex matching a caller and
  // its callee) do not count twice.
  function matchedSamples(node, re) {
    if (re.test(node)) { return node.n; }
    return node.list.reduce(function (sum, kid) { return sum + matchedSamples(kid, re); }, 0);
  }

  function showMatched(view, zoom, re) {
    var out = $('matched');
    if (re === false) { out.textContent = 'not a regular expression'; return; }
    if (!re) { out.textContent = ''; return; }
    var all = matchedSamples(view.root, re), inZoom = 0;
    for (var up = zoom; up && !inZoom; up = up.parent) {
      if (re.test(up)) { inZoom = zoom.n; }
    }
    if (!inZoom) { inZoom = matchedSamples(zoom, re); }
    out.textContent = 'matched: ' + pct(all, view.root.n) + ' of samples' +
      (zoom === view.root ? '' : ', ' + pct(inZoom, zoom.n) + ' of the zoomed frame');
    out.setAttribute('data-all', all / view.root.n);
    out.setAttribute('data-zoomed', inZoom / zoom.n);
  }

  function drawBaselineOnly(view, y) {
    var list = $('baseline-only');
    while (list.firstChild) { list.removeChild(list.firstChild); }
    if (!view.base) { return 0; }
    var gone = [];
    (function walk(base, current, trail) {
      Object.keys(base.kids).forEach(function (k) {
        var kid = base.kids[k], next = trail.concat(frames[kid.f][1]);
        if (current && current.kids[k]) { walk(kid, current.kids[k], next); }
        else { gone.push([kid, next]); }
      });
    })(view.base, view.root, []);
    gone.sort(function (a, b) { return b[0].n - a[0].n; });
    var lines = [gone.length ? 'Only in the baseline (' + gone.length + ' frames, largest first):'
                             : 'No frame is only in the baseline.'];
    gone.slice(0, 25).forEach(function (item) {
      lines.push(pct(item[0].n, view.base.n) + '  ' + frames[item[0].f][0] +
                 '  (under ' + (item[1].slice(0, -1).slice(-3).join(' > ') || 'the root') + ')');
    });
    lines.forEach(function (line, i) {
      var t = document.createElementNS(NS, 'text');
      t.setAttribute('x', MARGIN); t.setAttribute('y', y + i * 15);
      t.setAttribute('class', i ? 'gone' : 'heading');
      t.textContent = line;
      list.appendChild(t);
    });
    return lines.length * 15 + 10;
  }

  function zoomTo(node) {
    state.zoom = node.parent ? node : null;
    draw();
  }

  function reset() { state.zoom = null; draw(); }

  function writeHash() {
    var view = views[state.view], parts = ['view=' + encodeURIComponent(view.spec.name)];
    if (state.zoom) { parts.push('zoom=' + path(state.zoom)); }
    if (state.search) { parts.push('search=' + encodeURIComponent(state.search)); }
    if (state.icicle) { parts.push('icicle=1'); }
    var hash = '#' + parts.join('&');
    if (location.hash !== hash) { history.replaceState(null, '', hash); }
  }

  function readHash() {
    var params = {};
    location.hash.replace(/^#/, '').split('&').forEach(function (part) {
      var i = part.indexOf('=');
      if (i > 0) { params[part.slice(0, i)] = decodeURIComponent(part.slice(i + 1)); }
    });
    var index = views.findIndex(function (v) { return v.spec.name === params.view; });
    state.view = index < 0 ? 0 : index;
    var zoom = params.zoom ? find(views[state.view], params.zoom) : null;
    state.zoom = zoom && zoom.parent ? zoom : null;
    state.search = params.search || '';
    state.icicle = params.icicle === '1';
    $('search').value = state.search;
  }

  function controls() {
    var bar = $('views');
    views.forEach(function (view, i) {
      var b = document.createElementNS('http://www.w3.org/1999/xhtml', 'button');
      b.className = 'view';
      b.textContent = view.spec.label + ' (' + view.root.n + ')';
      b.title = view.spec.description || '';
      b.addEventListener('click', function () { state.view = i; state.zoom = null; draw(); });
      bar.appendChild(b);
    });
    // One listener for all frames: a large profile draws tens of thousands.
    var hit = function (e) {
      var g = e.target.closest ? e.target.closest('g.f') : null;
      return g ? drawn[+g.getAttribute('data-i')] : null;
    };
    $('frames').addEventListener('click', function (e) {
      var node = hit(e);
      if (node) { zoomTo(node); }
    });
    $('frames').addEventListener('mouseover', function (e) {
      var node = hit(e);
      if (node) { details(node); }
    });
    $('frames').addEventListener('mouseout', function () {
      details(state.zoom || views[state.view].root);
    });
    $('reset').addEventListener('click', reset);
    $('orient').addEventListener('click', function () { state.icicle = !state.icicle; draw(); });
    $('search').addEventListener('input', function (e) { state.search = e.target.value; paint(); });
    document.addEventListener('keydown', function (e) {
      if ((e.ctrlKey || e.metaKey) && e.key === 'f') {
        e.preventDefault();
        $('search').focus(); $('search').select();
      } else if (e.key === 'Escape') {
        if (state.zoom) { reset(); }
        else if (state.search) { state.search = ''; $('search').value = ''; paint(); }
      }
    });
    window.addEventListener('resize', draw);
    window.addEventListener('hashchange', function () { readHash(); draw(); });
  }

  controls();
  readHash();
  draw();
})();
