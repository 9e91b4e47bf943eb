from sonic.cli import main

main()
