-- lokal for Neovim 0.11+: the language server through vim.lsp.config, ghost text for LSP inline
-- completion (native vim.lsp.inline_completion on 0.12+, extmarks otherwise), a :Lokal command and a
-- statusline piece showing the workspace's tier.
local M = {}

local ns = vim.api.nvim_create_namespace('lokal_ghost')
local state = { items = {}, timer = nil, tier = nil, model = nil }
M.config = {
  cmd = { 'lokal', '--stdio' },
  filetypes = { 'rust', 'python', 'typescript', 'typescriptreact', 'javascript', 'javascriptreact', 'go', 'markdown', 'lua', 'c', 'cpp', 'java' },
  root_markers = { '.lokal.toml', '.git' },
  init_options = {},
  debounce_ms = 120,
  keys = { accept = '<Tab>', accept_word = '<M-Right>', accept_line = '<M-l>', dismiss = '<C-]>' },
  native = true, -- use vim.lsp.inline_completion where Neovim has it
}

local function client(buf)
  return vim.lsp.get_clients({ bufnr = buf or 0, name = 'lokal' })[1]
end

--- Remove the ghost text of a buffer.
function M.dismiss(buf)
  buf = buf or vim.api.nvim_get_current_buf()
  vim.api.nvim_buf_clear_namespace(buf, ns, 0, -1)
  state.items[buf] = nil
end

local function show(buf, row, col, text)
  M.dismiss(buf)
  if not text or text:match('^%s*$') then
    return
  end
  local lines = vim.split(text, '\n', { plain = true })
  local virt_lines = {}
  for i = 2, #lines do
    virt_lines[#virt_lines + 1] = { { lines[i], 'Comment' } }
  end
  vim.api.nvim_buf_set_extmark(buf, ns, row, col, {
    virt_text = { { lines[1], 'Comment' } },
    virt_text_pos = 'inline',
    virt_lines = #virt_lines > 0 and virt_lines or nil,
  })
  state.items[buf] = { row = row, col = col, text = text }
end

--- Ask the server for ghost text at the cursor now.
function M.request(buf)
  buf = buf or vim.api.nvim_get_current_buf()
  local c = client(buf)
  if not c then
    return
  end
  local win = vim.api.nvim_get_current_win()
  local params = vim.lsp.util.make_position_params(win, c.offset_encoding)
  params.context = { triggerKind = 2 }
  local cursor = vim.api.nvim_win_get_cursor(win)
  c:request('textDocument/inlineCompletion', params, function(err, result)
    if err or not result then
      return
    end
    local items = result.items or result
    local item = items[1]
    -- Only show it if the cursor has not moved meanwhile.
    local now = vim.api.nvim_win_get_cursor(win)
    if item and now[1] == cursor[1] and now[2] == cursor[2] then
      show(buf, cursor[1] - 1, cursor[2], item.insertText)
    end
  end, buf)
end

local function insert(buf, text)
  local it = state.items[buf]
  if not it then
    return false
  end
  local lines = vim.split(text, '\n', { plain = true })
  M.dismiss(buf)
  vim.api.nvim_buf_set_text(buf, it.row, it.col, it.row, it.col, lines)
  local last = #lines == 1 and it.col + #lines[1] or #lines[#lines]
  vim.api.nvim_win_set_cursor(0, { it.row + #lines, last })
  return true
end

--- Accept the whole suggestion; `what` = 'word' or 'line' accepts a part of it.
function M.accept(what, buf)
  buf = buf or vim.api.nvim_get_current_buf()
  local it = state.items[buf]
  if not it then
    return false
  end
  return insert(buf, M._part(it.text, what))
end

--- The part of a suggestion that `what` accepts: 'word', 'line', or nil (all of it).
function M._part(text, what)
  if what == 'word' then
    return text:match('^%s*[%w_]+') or text:match('^%s*%S') or text
  elseif what == 'line' then
    return text:match('^([^\n]*)') or text
  end
  return text
end

-- Neovim 0.12+: keys on its own inline completion. get() accepts the shown candidate (on_accept cuts it
-- to a word or a line); there is no dismiss call, so dismiss turns the buffer's inline completion off and
-- on again, which drops the candidate until the cursor moves.
local function map_native(buf)
  local ic = vim.lsp.inline_completion
  local k = M.config.keys
  local function map(lhs, what, fallback)
    vim.keymap.set('i', lhs, function()
      local accepted = ic.get({
        bufnr = buf,
        on_accept = what and function(item)
          if type(item.insert_text) == 'string' then
            item.insert_text = M._part(item.insert_text, what)
          end
          return item
        end or nil,
      })
      if not accepted then
        return fallback
      end
    end, { buffer = buf, expr = true })
  end
  map(k.accept, nil, k.accept == '<Tab>' and '\t' or '')
  map(k.accept_word, 'word', '')
  map(k.accept_line, 'line', '')
  local native_ns = vim.api.nvim_create_namespace('nvim.lsp.inline_completion')
  vim.keymap.set('i', k.dismiss, function()
    if #vim.api.nvim_buf_get_extmarks(buf, native_ns, 0, -1, { limit = 1 }) == 0 then
      return vim.keycode(k.dismiss) -- nothing shown: the key does what it did
    end
    vim.schedule(function()
      ic.enable(false, { bufnr = buf })
      ic.enable(true, { bufnr = buf })
    end)
    return ''
  end, { buffer = buf, expr = true })
end

function M.suggestion(buf)
  local it = state.items[buf or vim.api.nvim_get_current_buf()]
  return it and it.text or nil
end

local function schedule(buf)
  if state.timer then
    state.timer:stop()
  end
  state.timer = vim.defer_fn(function()
    if vim.api.nvim_get_mode().mode:sub(1, 1) == 'i' then
      M.request(buf)
    end
  end, M.config.debounce_ms)
end

--- Statusline piece: "lokal T3" (or "lokal ?" before the server answered).
function M.statusline()
  return 'lokal ' .. (state.tier and ('T' .. state.tier) or '?')
end

function M.refresh_status(buf)
  local c = client(buf)
  if not c then
    return
  end
  c:request('lokal/status', {}, function(err, res)
    if err or not res then
      return
    end
    local tiers = {}
    for _, f in ipairs(res.folders or {}) do
      tiers[#tiers + 1] = f.tier
    end
    state.tier = #tiers > 0 and math.max(unpack(tiers)) or 3
    state.model = res.model
  end, buf)
end

local function command(opts)
  local sub = opts.fargs[1] or 'status'
  local buf = vim.api.nvim_get_current_buf()
  local c = client(buf)
  if not c then
    return vim.notify('lokal is not attached to this buffer', vim.log.levels.WARN)
  end
  local uri = vim.uri_from_bufnr(buf)
  if sub == 'status' then
    c:request('lokal/status', {}, function(err, res)
      if err then
        return vim.notify(err.message, vim.log.levels.ERROR)
      end
      local out = {}
      for _, f in ipairs(res.folders or {}) do
        out[#out + 1] = string.format('%s: Tier %d (%s)', f.uri, f.tier, f.source)
      end
      out[#out + 1] = 'model: ' .. vim.inspect(res.model)
      vim.notify(table.concat(out, '\n'))
    end, buf)
  elseif sub == 'implement' then
    c:request('workspace/executeCommand', { command = 'lokal.implementFromDesignDoc', arguments = { { uri = uri } } }, function(err)
      if err then
        vim.notify(err.message, vim.log.levels.ERROR)
      end
    end, buf)
  elseif sub == 'design' then
    c:request('workspace/executeCommand', { command = 'lokal.cloudDesign', arguments = { { uri = uri } } }, function(err)
      if err then
        vim.notify(err.message, vim.log.levels.ERROR)
      end
    end, buf)
  elseif sub == 'rewrite' then
    local instruction = table.concat(vim.list_slice(opts.fargs, 2), ' ')
    local s, e = vim.api.nvim_buf_get_mark(buf, '<'), vim.api.nvim_buf_get_mark(buf, '>')
    local range = vim.lsp.util.make_given_range_params(s, e, buf, c.offset_encoding).range
    c:request('workspace/executeCommand', { command = 'lokal.rewrite', arguments = { { uri = uri, range = range, instruction = instruction } } }, function(err)
      if err then
        vim.notify(err.message, vim.log.levels.ERROR)
      end
    end, buf)
  elseif sub == 'audit' then
    vim.notify(vim.fn.system({ M.config.cmd[1], 'audit' }))
  else
    vim.notify('usage: :Lokal status|implement|design|rewrite <instruction>|audit', vim.log.levels.WARN)
  end
end

function M.setup(opts)
  M.config = vim.tbl_deep_extend('force', M.config, opts or {})
  vim.lsp.config('lokal', {
    cmd = M.config.cmd,
    filetypes = M.config.filetypes,
    root_markers = M.config.root_markers,
    init_options = M.config.init_options,
  })
  vim.lsp.enable('lokal')
  vim.api.nvim_create_user_command('Lokal', command, { nargs = '*', range = true })
  local group = vim.api.nvim_create_augroup('lokal', { clear = true })
  vim.api.nvim_create_autocmd('LspAttach', {
    group = group,
    callback = function(ev)
      local c = vim.lsp.get_client_by_id(ev.data.client_id)
      if not c or c.name ~= 'lokal' then
        return
      end
      M.refresh_status(ev.buf)
      local native = M.config.native and vim.lsp.inline_completion ~= nil
      if native then
        vim.lsp.inline_completion.enable(true, { bufnr = ev.buf })
        map_native(ev.buf)
      else
        vim.api.nvim_create_autocmd({ 'TextChangedI', 'CursorMovedI' }, { group = group, buffer = ev.buf, callback = function() schedule(ev.buf) end })
        vim.api.nvim_create_autocmd({ 'InsertLeave', 'BufLeave' }, { group = group, buffer = ev.buf, callback = function() M.dismiss(ev.buf) end })
        local k = M.config.keys
        -- An <expr> mapping may not change the buffer (textlock): the key inserts nothing itself when there
        -- is a suggestion, and the edit runs right after it; without one, the key does what it did.
        local function map(lhs, fn, fallback)
          vim.keymap.set('i', lhs, function()
            if not state.items[ev.buf] then
              return fallback
            end
            vim.schedule(fn)
            return ''
          end, { buffer = ev.buf, expr = true })
        end
        map(k.accept, function() M.accept(nil, ev.buf) end, k.accept == '<Tab>' and '\t' or '')
        map(k.accept_word, function() M.accept('word', ev.buf) end, '')
        map(k.accept_line, function() M.accept('line', ev.buf) end, '')
        map(k.dismiss, function() M.dismiss(ev.buf) end, '')
      end
      -- Plain completion too, for menus and for clients of the list.
      if vim.lsp.completion then
        vim.lsp.completion.enable(true, c.id, ev.buf, { autotrigger = false })
      end
    end,
  })
end

return M
