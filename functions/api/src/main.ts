// Appwrite function `api`: the REST gateway and webhook receiver. Every HTTP execution is one request to the hub's
// Hono app, its body bytes untouched; the logic is the library's (src/).
import { sendFetchResponse, toFetchRequest } from '../../../src/appwrite/http.ts';
import { defineFunction } from '../../../src/appwrite/runtime.ts';

export default defineFunction({ name: 'api', triggers: ['http'] }, async (context, runtime) => {
  const response = await runtime.hub().app.fetch(toFetchRequest(context.req));
  return sendFetchResponse(context.res, response);
});
