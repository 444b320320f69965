-- Write the value hpass.environ() has for the name given.
io.write(require("hpass").environ()[arg[1]] or "nil")
