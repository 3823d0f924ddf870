"""Email in development: printed to the console like Django's console backend, but each message
is headed by a short line saying whom it is for and what it is, and the links it carries (a
reply link is the one thing a developer looks for in the output)."""

import re

from django.core.mail.backends.console import EmailBackend

LINK = re.compile(r"https?://[^\s<>\"')]+")


class ConsoleEmailBackend(EmailBackend):
    def write_message(self, message):
        body = message.body if isinstance(message.body, str) else ""
        links = list(dict.fromkeys(LINK.findall(body)))
        rule = "=" * 79
        self.stream.write(f"{rule}\nEMAIL to {', '.join(message.to)}: {message.subject}\n")
        for link in links:
            self.stream.write(f"  link: {link}\n")
        self.stream.write(f"{rule}\n")
        super().write_message(message)
