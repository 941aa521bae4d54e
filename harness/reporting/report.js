// Sorts a table by the column whose heading is clicked (or Enter on it): by
// number when every cell of the column is one, else by text; a second click
// reverses. Empty cells go last either way.
(function () {
  'use strict';
  function sortBy(table, index, th) {
    var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
    var descending = th.getAttribute('aria-sort') === 'ascending';
    var keys = rows.map(function (r) { return r.cells[index].getAttribute('data-value'); });
    var numeric = keys.every(function (k) { return k === '' || !isNaN(Number(k)); });
    var order = rows.map(function (r, i) { return i; }).sort(function (a, b) {
      var x = keys[a], y = keys[b];
      if (x === '' || y === '') { return (x === '') - (y === ''); }
      var c = numeric ? Number(x) - Number(y) : x.localeCompare(y);
      return descending ? -c : c;
    });
    order.forEach(function (i) { body.appendChild(rows[i]); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (h) {
      h.removeAttribute('aria-sort');
    });
    th.setAttribute('aria-sort', descending ? 'descending' : 'ascending');
  }
  document.querySelectorAll('table.sortable').forEach(function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, i) {
      th.addEventListener('click', function () { sortBy(table, i, th); });
      th.addEventListener('keydown', function (e) {
        if (e.key === 'Enter') { sortBy(table, i, th); }
      });
    });
  });
})();
