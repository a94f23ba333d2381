from medforget.cli import main

main()
