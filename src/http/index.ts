export { sendJson } from './send-json.js';
export { listen, close } from './listen.js';
