// The web template's whole image: a small HTTP server. It listens on $PORT (the host port the
// process driver allocated for the template's first port), answers GET /healthz for the health
// check and anything else with $GREETING and the instance's name. CommonJS so any Node runs it.
'use strict';
const http = require('node:http');

const port = Number(process.env.PORT || 8080);
const greeting = process.env.GREETING || 'hello';
const instance = process.env.XENOS_INSTANCE_NAME || 'web';

const server = http.createServer((req, res) => {
  if (req.url === '/healthz') {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('ok\n');
    return;
  }
  res.writeHead(200, { 'content-type': 'text/plain' });
  res.end(`${greeting} from ${instance}\n`);
});

server.listen(port, () => console.log(`web: listening on ${port}`));
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
