export { matchPath, type PathMatch } from './match-path.js';
export { normalizePath } from './normalize-path.js';
export { SplitChoice, hexToUnit, stringToUnit, type Sticky } from './split-choice.js';
