-- Loaded by Neovim's runtime; call require('lokal').setup() from your config to start the server.
if vim.fn.has('nvim-0.11') == 0 then
  vim.notify('lokal needs Neovim 0.11 or newer', vim.log.levels.WARN)
end
