/* global app, fetch, setTimeout */
// `sfc view`: the served page asks every 2 s whether the files on disk changed (the server's
// stamp of them) and reloads the data when they did.

function poll(stamp) {
  setTimeout(async () => {
    try {
      const now = await (await fetch('version')).text();
      if (now !== stamp) {
        app.load(await (await fetch('data.json')).json());
        stamp = now;
      }
    } catch {
      // The server stopped: stay on the last data.
    }
    poll(stamp);
  }, 2000);
}

Object.assign(app, { poll });
