export { createPipeline, type PipelineDeps, type Stage } from './run.js';
export { RequestContext } from './context.js';
