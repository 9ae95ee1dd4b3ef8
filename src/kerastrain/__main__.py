from kerastrain.cli import main

main()
