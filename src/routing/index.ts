export { matchPath, type PathMatch } from './match-path.js';
export { normalizePath } from './normalize-path.js';
