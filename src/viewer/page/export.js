/* global app, document, Blob, URL, Image, XMLSerializer, setTimeout */
// The current view as an SVG or PNG download.

function currentSvgText() {
  const clone = app.view.svg.cloneNode(true);
  clone.classList.remove('focus');
  for (const el of clone.querySelectorAll('.on')) el.classList.remove('on');
  clone.setAttribute('width', String(app.view.width));
  clone.setAttribute('height', String(app.view.height));
  return '<?xml version="1.0" encoding="UTF-8"?>\n' + new XMLSerializer().serializeToString(clone);
}
function download(blob, name) {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
function exportSvg() {
  download(new Blob([currentSvgText()], { type: 'image/svg+xml' }), 'circuit.svg');
}
function exportPng() {
  const img = new Image();
  const scale = Math.min(2, 16000 / app.view.width, 16000 / app.view.height);
  const w = app.view.width;
  const h = app.view.height;
  img.onload = () => {
    const canvas = document.createElement('canvas');
    canvas.width = Math.round(w * scale);
    canvas.height = Math.round(h * scale);
    const ctx = canvas.getContext('2d');
    ctx.fillStyle = '#ffffff';
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.scale(scale, scale);
    ctx.drawImage(img, 0, 0, w, h);
    canvas.toBlob((blob) => download(blob, 'circuit.png'), 'image/png');
  };
  img.src = 'data:image/svg+xml;charset=utf-8,' + encodeURIComponent(currentSvgText());
}

Object.assign(app, { download, exportSvg, exportPng });
