// Records what the page saw after loading (images that failed, script errors, audio players and the
// length each one reports) as attributes of the body element, so a headless browser's DOM dump shows
// them; the report's browser tests read them.
window.sonicErrors = [];
window.addEventListener('error', function (e) { window.sonicErrors.push(String(e.message || 'resource')); }, true);
window.addEventListener('load', function () {
  var broken = [];
  for (var i = 0; i < document.images.length; i++) {
    var image = document.images[i];
    if (!image.complete || image.naturalWidth === 0) { broken.push(image.getAttribute('src')); }
  }
  document.body.setAttribute('data-images', String(document.images.length));
  document.body.setAttribute('data-broken-images', broken.join(' '));
  document.body.setAttribute('data-errors', String(window.sonicErrors.length));
  document.body.setAttribute('data-checked', 'yes');
  checkAudio(document.querySelectorAll('audio'));
});
// An audio player counts as playable once its metadata is read and it reports a length above 0.
function checkAudio(players) {
  var pending = players.length, playable = 0, shortest = Infinity, broken = [];
  var body = document.body;
  body.setAttribute('data-audio', String(players.length));
  function settle(player) {
    var seconds = player.duration;
    if (isFinite(seconds) && seconds > 0) { playable++; shortest = Math.min(shortest, seconds); }
    else { broken.push(player.getAttribute('src')); }
    pending--;
    if (pending === 0) {
      body.setAttribute('data-audio-playable', String(playable));
      body.setAttribute('data-audio-shortest', isFinite(shortest) ? shortest.toFixed(2) : '');
      body.setAttribute('data-broken-audio', broken.join(' '));
      body.setAttribute('data-audio-checked', 'yes');
    }
  }
  if (pending === 0) { body.setAttribute('data-audio-checked', 'yes'); return; }
  players.forEach(function (player) {
    var settled = false;
    function once() { if (!settled) { settled = true; settle(player); } }
    if (player.readyState >= 1 || player.error) { once(); return; }
    player.addEventListener('loadedmetadata', once);
    player.addEventListener('error', once);
  });
}
