// The cnnspec extension: starts `cnnspec lsp` (stdio) for the YAML files matching `cnnspec.files`.
// Everything else (diagnostics, inlay hints, hover, completion, definitions, symbols, quick fixes) comes
// from the server through vscode-languageclient.
"use strict";

const vscode = require("vscode");
const { LanguageClient } = require("vscode-languageclient/node");

let client;

async function start() {
  const config = vscode.workspace.getConfiguration("cnnspec");
  const [command, ...args] = config.get("command");
  const serverOptions = { command, args };
  const clientOptions = {
    documentSelector: [{ scheme: "file", language: "yaml", pattern: config.get("files") }],
  };
  client = new LanguageClient("cnnspec", "cnnspec", serverOptions, clientOptions);
  await client.start();
}

async function activate(context) {
  context.subscriptions.push(vscode.workspace.onDidChangeConfiguration(async (event) => {
    if (event.affectsConfiguration("cnnspec")) {
      await deactivate();
      await start();
    }
  }));
  await start();
}

async function deactivate() {
  if (client) {
    const running = client;
    client = undefined;
    await running.stop();
  }
}

module.exports = { activate, deactivate };
