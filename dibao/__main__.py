from dibao.cli import app

app()
