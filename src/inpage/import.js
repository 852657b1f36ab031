// Imports the in-page engine's module (public/inpage/engine.js) when the user chooses it, so
// that it is not part of the page's first load.
export function importEngine(path) {
  return import(new URL(path, document.baseURI).href);
}
