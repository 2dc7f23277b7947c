// The web template's whole image: a small HTTP server. It listens on $PORT (the host port the
// process driver allocated for the template's first port), answers GET /healthz for the health
// check and anything else with $GREETING and the instance's name. An ES module (.mjs) so it runs
// the same under any Node, wherever the image is copied.
import http from 'node:http';

const port = Number(process.env.PORT || 8080);
const greeting = process.env.GREETING || 'hello';
const instance = process.env.XENOS_INSTANCE_NAME || 'web';

const server = http.createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain' });
  res.end(req.url === '/healthz' ? 'ok\n' : `${greeting} from ${instance}\n`);
});

server.listen(port, () => console.log(`web: listening on ${server.address().port}`));
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
