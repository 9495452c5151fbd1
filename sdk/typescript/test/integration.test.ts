/**
 * The integration tests, against the real stack (one per run, see stack.ts). One entry file, so
 * that one process holds the stack; the suites run one after another (the retry suite stops and
 * starts the API).
 */
import { after } from "node:test";
import { closeStack } from "./stack.js";
import "./walkthrough.suite.js";
import "./pagination.suite.js";
import "./errors.suite.js";
import "./secrets.suite.js";
import "./keyProvider.suite.js";
import "./audit.suite.js";
import "./retries.suite.js";

after(closeStack);
