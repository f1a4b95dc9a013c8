/** The fast HTTP/1.1 front of the plain proxy listener. */
export { FastServer, type FastServerOptions } from './server.js';
export { FastRequest, FastResponse, InvalidHeaderError } from './messages.js';
