-- Neovim's own LSP client attached to `cnnspec lsp`: open a spec, wait for the diagnostics the server
-- publishes, fix one mistake in the unsaved buffer, wait again, and write both lists as JSON.
-- Environment: CNNSPEC_SPEC (the spec), CNNSPEC_OUT (the JSON file), CNNSPEC_CMD (the server command, JSON).
-- Works with Neovim 0.7 (Debian 12) and later: vim.lsp.start_client + buf_attach_client.
local spec, out = os.getenv("CNNSPEC_SPEC"), os.getenv("CNNSPEC_OUT")
local cmd = vim.fn.json_decode(os.getenv("CNNSPEC_CMD"))
local function finish(result)
  local file = io.open(out, "w")
  file:write(vim.fn.json_encode(result))
  file:close()
  vim.cmd("qall!")
end

vim.cmd("edit " .. vim.fn.fnameescape(spec))
local buf = vim.api.nvim_get_current_buf()
local published = 0
local default = vim.lsp.handlers["textDocument/publishDiagnostics"]
vim.lsp.handlers["textDocument/publishDiagnostics"] = function(err, result, ctx, config)
  default(err, result, ctx, config)
  if result and vim.uri_to_bufnr(result.uri) == buf then
    published = published + 1
  end
end
local client = vim.lsp.start_client({
  name = "cnnspec", cmd = cmd, root_dir = vim.fn.fnamemodify(spec, ":p:h"),
  flags = {debounce_text_changes = 10},
})
vim.lsp.buf_attach_client(buf, client)

local function shown()
  local list = {}
  for _, d in ipairs(vim.diagnostic.get(buf)) do
    table.insert(list, {lnum = d.lnum, col = d.col, end_lnum = d.end_lnum, end_col = d.end_col,
                        message = d.message, severity = d.severity, source = d.source})
  end
  table.sort(list, function(a, b) return a.lnum < b.lnum or (a.lnum == b.lnum and a.col < b.col) end)
  return list
end

if not vim.wait(30000, function() return published >= 1 end, 20) then
  finish({error = "no diagnostics published for the spec within 30 s"})
end
local opened = shown()
-- the unsaved fix: line 5 `  - rellu` becomes `  - relu`
vim.api.nvim_buf_set_lines(buf, 4, 5, false, {"  - relu"})
if not vim.wait(30000, function() return published >= 2 and #vim.diagnostic.get(buf) < #opened end, 20) then
  finish({error = "no diagnostics published after the edit within 30 s", opened = opened})
end
finish({opened = opened, edited = shown(), client = vim.lsp.get_client_by_id(client).name})
