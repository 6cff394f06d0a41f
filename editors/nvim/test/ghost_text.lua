-- Headless end-to-end test: real Neovim, this plugin, the real lokal server and model.
-- nvim --headless -u NONE -l editors/nvim/test/ghost_text.lua <lokal> <model> <fixture-dir>
local lokal_bin, model, fixtures = arg[1], arg[2], arg[3]
vim.opt.rtp:prepend(vim.fn.fnamemodify(debug.getinfo(1, 'S').source:sub(2), ':p:h:h'))
local function fail(msg)
  io.stderr:write('FAIL: ' .. msg .. '\n')
  os.exit(1)
end
local function say(msg)
  io.stdout:write(msg .. '\n')
end

-- Work on a copy: accepting ghost text edits the buffer.
local dir = vim.fn.tempname()
vim.fn.mkdir(dir .. '/src', 'p')
vim.fn.writefile(vim.fn.readfile(fixtures .. '/src/lib.rs'), dir .. '/src/lib.rs')
vim.fn.writefile({ 'tier = 3' }, dir .. '/.lokal.toml')

vim.cmd('filetype on')
-- Headless Neovim stays in normal mode; let the cursor sit after the last character as in insert mode.
vim.o.virtualedit = 'onemore'
local lokal = require('lokal')
lokal.setup({ cmd = { lokal_bin, '--stdio' }, init_options = { modelPath = model, maxTokens = 16 }, native = false, debounce_ms = 0 })
vim.cmd('edit ' .. dir .. '/src/lib.rs')
local buf = vim.api.nvim_get_current_buf()

if not vim.wait(20000, function() return vim.lsp.get_clients({ bufnr = buf, name = 'lokal' })[1] ~= nil end, 50) then
  fail('lokal did not attach')
end
local client = vim.lsp.get_clients({ bufnr = buf, name = 'lokal' })[1]
if not vim.wait(60000, function()
  local r = client:request_sync('lokal/stats', {}, 2000, buf)
  return r and r.result and r.result.state == 'ready'
end, 100) then
  fail('model never ready')
end
say('attached; model ready')

-- Ghost text at the body of sum_of_squares.
local row
for i, l in ipairs(vim.api.nvim_buf_get_lines(buf, 0, -1, false)) do
  if l:find('pub fn sum_of_squares', 1, true) then
    row = i + 1
  end
end
vim.api.nvim_win_set_cursor(0, { row, 4 })
lokal.request(buf)
if not vim.wait(30000, function() return lokal.suggestion(buf) ~= nil end, 50) then
  fail('no ghost text appeared')
end
local marks = vim.api.nvim_buf_get_extmarks(buf, vim.api.nvim_create_namespace('lokal_ghost'), 0, -1, { details = true })
if #marks ~= 1 or not marks[1][4].virt_text then
  fail('ghost text is not an extmark with virtual text')
end
local suggestion = lokal.suggestion(buf)
say('ghost text: ' .. vim.inspect(suggestion))
local first = vim.split(suggestion, '\n', { plain = true })[1]
lokal.accept('line', buf)
local line = vim.api.nvim_buf_get_lines(buf, row - 1, row, false)[1]
if line ~= '    ' .. first then
  fail(string.format('accepted line is %q, expected %q', line, '    ' .. first))
end
say('accepted: ' .. line)

-- Code action: add a doc comment to an undocumented function, resolve it, apply the edit.
vim.api.nvim_buf_set_lines(buf, -1, -1, false, { '', 'pub fn half(x: f64) -> f64 {', '    x / 2.0', '}' })
local half = vim.api.nvim_buf_line_count(buf) - 2
vim.wait(200)
local params = {
  textDocument = { uri = vim.uri_from_bufnr(buf) },
  range = { start = { line = half, character = 4 }, ['end'] = { line = half, character = 4 } },
  context = { diagnostics = {} },
}
local res = client:request_sync('textDocument/codeAction', params, 5000, buf)
if not res or res.err then
  fail('codeAction failed: ' .. vim.inspect(res))
end
local action
for _, a in ipairs(res.result) do
  if a.title:find('doc comment', 1, true) then
    action = a
  end
end
if not action then
  fail('no doc comment action offered: ' .. vim.inspect(res.result))
end
local resolved = client:request_sync('codeAction/resolve', action, 60000, buf)
if not resolved or resolved.err then
  fail('resolve failed: ' .. vim.inspect(resolved))
end
vim.lsp.util.apply_workspace_edit(resolved.result.edit, client.offset_encoding)
local doc = vim.api.nvim_buf_get_lines(buf, half - 1, half, false)[1]
if not doc:match('^///') then
  fail('applied edit did not add a doc comment above `half`: ' .. doc)
end
say('code action applied: ' .. doc)
say('nvim: PASS')
vim.lsp.stop_client(client.id, true)
os.exit(0)
