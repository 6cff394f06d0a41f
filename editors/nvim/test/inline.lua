-- End-to-end test of ghost text while typing: a real Neovim with editors/nvim, the real lokal server and
-- model, keys sent as a person types them.
--
--   nvim --headless -u NONE -i NONE -l editors/nvim/test/inline.lua <lokal> <model> <fixture-workspace> <native|extmarks>
--   LOKAL_TEST_NVIM=/path/to/nvim: the Neovim under test (default: the one running this script)
--
-- This script is the driver: it starts the Neovim under test (`--embed --headless`) and sends it keys over
-- RPC (nvim_input), so insert mode, autocommands and the plugin's mappings run as they do for a user.
--   native:   Neovim 0.12+'s own vim.lsp.inline_completion shows the ghost text (namespace
--             nvim.lsp.inline_completion), the plugin maps <Tab> to vim.lsp.inline_completion.get().
--   extmarks: the plugin's own ghost text (namespace lokal_ghost), for Neovim 0.11.
-- Prints "ok ..." per step; a failure prints "FAIL ..." and exits 1.
local lokal_bin, model, fixtures, mode = arg[1], arg[2], arg[3], arg[4]
assert(lokal_bin and model and fixtures and (mode == 'native' or mode == 'extmarks'), 'usage: inline.lua <lokal> <model> <fixture-workspace> <native|extmarks>')
local native = mode == 'native'
local plugin_dir = vim.fn.fnamemodify(debug.getinfo(1, 'S').source:sub(2), ':p:h:h')
local t0 = vim.uv.hrtime()
local function secs(since)
  return (vim.uv.hrtime() - (since or t0)) / 1e9
end
local function out(s)
  io.stdout:write(s .. '\n')
  io.stdout:flush()
end

-- Work on a copy of the fixture (Tier 3 by its .lokal.toml): the test edits the file.
local dir = vim.fn.tempname()
vim.fn.mkdir(dir, 'p')
vim.fn.system({ 'cp', '-r', fixtures .. '/.', dir })

local editor = os.getenv('LOKAL_TEST_NVIM') or vim.v.progpath
local ch = vim.fn.jobstart({ editor, '--embed', '--headless', '--clean', '-i', 'NONE', '-n' }, {
  rpc = true,
  cwd = dir,
  env = { LOKAL_AUDIT_LOG = dir .. '/.audit.jsonl', LOKAL_LOG = 'warn' },
})
assert(ch > 0, 'could not start the Neovim under test: ' .. editor)

local function lua(code, ...)
  local r = vim.rpcrequest(ch, 'nvim_exec_lua', code, { ... })
  return r ~= vim.NIL and r or nil
end
local function keys(k)
  vim.rpcrequest(ch, 'nvim_input', k)
end
local function fail(msg)
  out('FAIL ' .. msg)
  pcall(vim.fn.jobstop, ch)
  vim.fn.delete(dir, 'rf')
  os.exit(1)
end
local function ok(msg)
  out(string.format('ok   [%5.1fs] %s', secs(), msg))
end
local function wait(what, ms, pred)
  if not vim.wait(ms, function()
    local good, r = pcall(pred)
    return good and r
  end, 20) then
    fail(what)
  end
end
local function show(s)
  return vim.inspect(s)
end
-- The ghost text shown in the current buffer: the extmarks of one namespace, virt_text then virt_lines.
local function ghost(ns_name)
  return lua([[
    local ns = vim.api.nvim_get_namespaces()[...]
    if not ns then return nil end
    local marks = vim.api.nvim_buf_get_extmarks(0, ns, 0, -1, { details = true })
    if #marks == 0 then return nil end
    local d = marks[1][4]
    local parts = {}
    for _, c in ipairs(d.virt_text or {}) do parts[#parts + 1] = c[1] end
    local text = table.concat(parts)
    for _, vl in ipairs(d.virt_lines or {}) do
      local l = {}
      for _, c in ipairs(vl) do l[#l + 1] = c[1] end
      text = text .. '\n' .. table.concat(l)
    end
    return { text = text, row = marks[1][2], col = marks[1][3] }
  ]], ns_name)
end
local NS = native and 'nvim.lsp.inline_completion' or 'lokal_ghost'
local OTHER = native and 'lokal_ghost' or 'nvim.lsp.inline_completion'

-- 1. The plugin, set up as editors/README.md says, with this test's binary and model.
lua([[
  local plugin, bin, model, native = ...
  vim.opt.rtp:prepend(plugin)
  vim.cmd('filetype on')
  vim.o.swapfile = false
  require('lokal').setup({
    cmd = { bin, '--stdio' },
    init_options = { modelPath = model, maxTokens = 24, maxLines = 3 },
    native = native,
  })
]], plugin_dir, lokal_bin, model, native)
local version = lua('return tostring(vim.version())')
if native and not lua('return vim.lsp.inline_completion ~= nil') then
  fail('Neovim ' .. version .. ' has no vim.lsp.inline_completion (0.12+)')
end
out(string.format('Neovim %s, ghost text by %s', version, native and 'vim.lsp.inline_completion (native)' or "the plugin's extmarks"))

lua('vim.cmd.edit(...)', dir .. '/src/lib.rs')
wait('lokal did not attach to src/lib.rs', 20000, function()
  return lua("return #vim.lsp.get_clients({ bufnr = 0, name = 'lokal' })") > 0
end)
wait('the model never became ready (lokal/stats)', 90000, function()
  return lua([[
    local r = vim.lsp.get_clients({ name = 'lokal' })[1]:request_sync('lokal/stats', {}, 2000, 0)
    return r and r.result and r.result.state == 'ready'
  ]])
end)
if native and not lua('return vim.lsp.inline_completion.is_enabled({ bufnr = 0 })') then
  fail('the plugin did not enable vim.lsp.inline_completion on the buffer')
end
ok('attached, model ready' .. (native and ', vim.lsp.inline_completion enabled on the buffer' or ''))

-- 2. The workspace's tier in the statusline piece (the fixture's .lokal.toml: tier = 3).
wait('statusline never showed "lokal T3": ' .. show(lua("return require('lokal').statusline()")), 15000, function()
  return lua("return require('lokal').statusline()") == 'lokal T3'
end)
ok('statusline: ' .. show(lua("return require('lokal').statusline()")))

-- 3. Type in the empty body of sum_of_squares; ghost text appears.
local row
for i, l in ipairs(lua('return vim.api.nvim_buf_get_lines(0, 0, -1, false)')) do
  if l:find('pub fn sum_of_squares', 1, true) then
    row = i + 1
  end
end
lua('vim.api.nvim_win_set_cursor(0, { ..., 0 })', row)
keys('A')
keys('xs.iter()')
local typed = vim.uv.hrtime()
local g
wait('no ghost text appeared after typing "xs.iter()"', 30000, function()
  local mode_now = vim.rpcrequest(ch, 'nvim_get_mode').mode
  local l = lua('return vim.api.nvim_buf_get_lines(0, ... - 1, ..., false)[1]', row)
  g = ghost(NS)
  return mode_now == 'i' and l == '    xs.iter()' and g ~= nil and g.text ~= ''
end)
local shown_after = secs(typed)
if ghost(OTHER) ~= nil then
  fail('ghost text in namespace ' .. OTHER .. ' too: ' .. show(ghost(OTHER)))
end
local cur = lua('return vim.api.nvim_win_get_cursor(0)')
if g.row ~= row - 1 or g.col ~= #'    xs.iter()' or cur[2] ~= g.col then
  fail(string.format('ghost text at %d:%d, cursor at %d:%d, expected at the end of line %d', g.row + 1, g.col, cur[1], cur[2], row))
end
ok(string.format('ghost text (%s) %.2fs after the last key, at line %d after "    xs.iter()": %s', NS, shown_after, row, show(g.text)))

-- 4. Accepting, with the plugin's keys: <M-Right> takes the suggestion's first word, then <Tab> all of the
--    next suggestion. Each time the buffer must be what it was plus exactly the accepted text at the cursor,
--    and the cursor must sit at the end of it, still in insert mode.
local function buffer()
  return lua('return vim.api.nvim_buf_get_lines(0, 0, -1, false)')
end
local function accept_with(key, text)
  local lines, c = buffer(), lua('return vim.api.nvim_win_get_cursor(0)')
  local ins = vim.split(text, '\n', { plain = true })
  local head, tail = lines[c[1]]:sub(1, c[2]), lines[c[1]]:sub(c[2] + 1)
  local expected = vim.list_slice(lines, 1, c[1] - 1)
  expected[#expected + 1] = head .. ins[1]
  for i = 2, #ins do
    expected[#expected + 1] = ins[i]
  end
  local last = c[1] + #ins - 1
  local want_cur = { last, #expected[last] }
  expected[last] = expected[last] .. tail
  vim.list_extend(expected, lines, c[1] + 1, #lines)
  keys(key)
  local got
  if not vim.wait(10000, function()
    got = buffer()
    return vim.deep_equal(got, expected)
  end, 20) then
    fail(string.format('after %s the buffer is not the earlier one plus %s at the cursor:\n%s', key, show(text), table.concat(got, '\n')))
  end
  local cur = lua('return vim.api.nvim_win_get_cursor(0)')
  if cur[1] ~= want_cur[1] or cur[2] ~= want_cur[2] then
    fail(string.format('after %s the cursor is at %d:%d, expected %d:%d', key, cur[1], cur[2], want_cur[1], want_cur[2]))
  end
  if lua('return vim.api.nvim_get_mode().mode') ~= 'i' then
    fail('not in insert mode after ' .. key)
  end
  return got, c[1], last
end

local word = lua("return require('lokal')._part(...)", g.text, 'word')
local got, from, to = accept_with('<M-Right>', word)
ok(string.format('<M-Right> accepted the word %s; lines %d-%d now %s', show(word), from, to, show(table.concat(vim.list_slice(got, from, to), '\n'))))

-- The cursor moved: a new suggestion for the new position, accepted whole with <Tab>.
local g2
wait('no new ghost text at the cursor after accepting a word', 30000, function()
  local c = lua('return vim.api.nvim_win_get_cursor(0)')
  g2 = ghost(NS)
  return g2 ~= nil and g2.text ~= '' and g2.row == c[1] - 1 and g2.col == c[2]
end)
ok('next ghost text at the cursor: ' .. show(g2.text))
got, from, to = accept_with('<Tab>', g2.text)
ok(string.format('<Tab> accepted it; lines %d-%d now %s', from, to, show(table.concat(vim.list_slice(got, from, to), '\n'))))

-- 5. A new line: ghost text again; the dismiss key (<C-]>) removes it and leaves the buffer as it was.
keys('<Esc>o')
keys('let n')
wait('no ghost text after "let n" on a new line', 30000, function()
  return ghost(NS) ~= nil and vim.rpcrequest(ch, 'nvim_get_mode').mode == 'i'
end)
local before_dismiss = lua('return vim.api.nvim_buf_get_lines(0, 0, -1, false)')
local shown = ghost(NS).text
keys('<C-]>')
wait('<C-]> did not remove the ghost text', 5000, function()
  return ghost(NS) == nil
end)
vim.wait(400)
if ghost(NS) ~= nil or not vim.deep_equal(lua('return vim.api.nvim_buf_get_lines(0, 0, -1, false)'), before_dismiss) then
  fail('after <C-]>: ghost ' .. show(ghost(NS)) .. ', or the buffer changed')
end
ok('second ghost text ' .. show(shown) .. ' dismissed with <C-]>, buffer unchanged')

out(string.format('neovim %s (%s): PASS in %.1f s', version, native and 'native inline completion' or 'extmarks', secs()))
pcall(vim.rpcrequest, ch, 'nvim_command', 'qa!')
vim.fn.jobstop(ch)
vim.fn.delete(dir, 'rf')
os.exit(0)
