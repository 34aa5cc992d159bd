from hcops.cli import main

main()
