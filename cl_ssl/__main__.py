from cl_ssl.cli import main

main()
