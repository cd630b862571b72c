// kiln sample: answers GET / on $PORT with a line naming the Node version it runs on.
const express = require("express");

const app = express();
const port = Number(process.env.PORT) || 8080;

app.get("/", (_request, response) => {
  response.type("text/plain").send(`Hello from kiln on Node ${process.version}\n`);
});

app.listen(port, () => {
  console.log(`listening on port ${port}`);
});
