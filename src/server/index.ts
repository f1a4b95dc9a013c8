export { Listeners, type GatewayPorts, type ListenersOptions, type ProxyHandlers } from './listeners.js';
