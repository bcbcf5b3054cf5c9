from twister.cli import main

main()
