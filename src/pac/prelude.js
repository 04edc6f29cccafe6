// The PAC helper functions that need no network, in the forms browsers give them. dnsResolve,
// dnsResolveEx, myIpAddress and myIpAddressEx are the program's own (bounded look-ups); nothing
// here reaches a file or the network.
var __pacDays = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];
var __pacMonths = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];
function __pacArgs(args) {
  var a = Array.prototype.slice.call(args);
  var gmt = a.length > 0 && a[a.length - 1] === 'GMT';
  if (gmt) a.pop();
  var d = new Date();
  var now = gmt
    ? { year: d.getUTCFullYear(), month: d.getUTCMonth(), day: d.getUTCDate(), wd: d.getUTCDay(),
        secs: d.getUTCHours() * 3600 + d.getUTCMinutes() * 60 + d.getUTCSeconds() }
    : { year: d.getFullYear(), month: d.getMonth(), day: d.getDate(), wd: d.getDay(),
        secs: d.getHours() * 3600 + d.getMinutes() * 60 + d.getSeconds() };
  return { a: a, now: now };
}
function __pacWithin(lo, x, hi) { return lo <= hi ? (lo <= x && x <= hi) : (x >= lo || x <= hi); }
function dnsDomainIs(host, domain) {
  host = String(host); domain = String(domain);
  return host.length >= domain.length && host.substring(host.length - domain.length) === domain;
}
function dnsDomainLevels(host) { return String(host).split('.').length - 1; }
function isPlainHostName(host) { return String(host).indexOf('.') < 0; }
function localHostOrDomainIs(host, hostdom) {
  host = String(host); hostdom = String(hostdom);
  return host === hostdom || hostdom.lastIndexOf(host + '.', 0) === 0;
}
function dnsResolve(host) { var ip = __pacDnsResolve(String(host)); return ip === undefined ? null : ip; }
function isResolvable(host) { return dnsResolve(host) !== null; }
function isResolvableEx(host) { return dnsResolveEx(String(host)) !== ''; }
function convert_addr(ip) {
  var p = String(ip).split('.');
  return (((p[0] & 0xff) << 24) | ((p[1] & 0xff) << 16) | ((p[2] & 0xff) << 8) | (p[3] & 0xff)) >>> 0;
}
function isInNet(host, pattern, mask) {
  var ip = /^\d+\.\d+\.\d+\.\d+$/.test(String(host)) ? String(host) : dnsResolve(host);
  if (ip === null) return false;
  var m = convert_addr(mask);
  return ((convert_addr(ip) & m) >>> 0) === ((convert_addr(pattern) & m) >>> 0);
}
function shExpMatch(str, pattern) {
  var re = String(pattern).replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp('^' + re + '$').test(String(str));
}
function weekdayRange() {
  var p = __pacArgs(arguments);
  var w1 = __pacDays.indexOf(p.a[0]);
  var w2 = p.a.length > 1 ? __pacDays.indexOf(p.a[1]) : w1;
  return w1 >= 0 && w2 >= 0 && __pacWithin(w1, p.now.wd, w2);
}
function timeRange() {
  var p = __pacArgs(arguments), a = p.a.map(Number), n = a.length;
  if (n === 1) return Math.floor(p.now.secs / 3600) === a[0];
  var lo, hi;
  if (n === 2) { lo = a[0] * 3600; hi = a[1] * 3600 - 1; }
  else if (n === 4) { lo = a[0] * 3600 + a[1] * 60; hi = a[2] * 3600 + a[3] * 60 - 1; }
  else if (n === 6) { lo = a[0] * 3600 + a[1] * 60 + a[2]; hi = a[3] * 3600 + a[4] * 60 + a[5]; }
  else return false;
  return __pacWithin(lo, p.now.secs, hi);
}
function dateRange() {
  var p = __pacArgs(arguments), now = p.now;
  var t = p.a.map(function (v) {
    if (typeof v === 'string') { var m = __pacMonths.indexOf(v); return m < 0 ? null : { month: m }; }
    return v > 31 ? { year: v } : { day: v };
  });
  if (t.length === 0 || t.length > 6 || t.some(function (x) { return x === null; })) return false;
  if (t.length === 1) { var k = Object.keys(t[0])[0]; return now[k] === t[0][k]; }
  if (t.length % 2) return false;
  var lo = {}, hi = {}, h = t.length / 2;
  t.slice(0, h).forEach(function (x) { Object.assign(lo, x); });
  t.slice(h).forEach(function (x) { Object.assign(hi, x); });
  function key(o) {
    return (o.year !== undefined ? o.year * 10000 : 0) + (o.month !== undefined ? o.month * 100 : 0) +
      (o.day !== undefined ? o.day : 0);
  }
  var present = {};
  Object.keys(lo).forEach(function (k) { present[k] = now[k]; });
  return __pacWithin(key(lo), key(present), key(hi));
}
