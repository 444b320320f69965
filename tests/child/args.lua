-- Print the command-line arguments, separated by spaces.
print(table.concat(arg, " ", 1))
