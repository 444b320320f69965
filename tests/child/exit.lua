-- Exit with the code given as the first argument.
os.exit(tonumber(arg[1]))
