// Records what the page saw after loading (images that failed, script errors) as attributes of the
// body element, so a headless browser's DOM dump shows them; the report's browser tests read them.
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
});
