"""Accounts: who may sign in and as what. People are invited by coordinators (no open sign-up),
set their password from the invitation, sign in by email with two-factor where their role needs
it (middleware), and integrations use API tokens coordinators issue (services, views).

It owns the people and tokens pages and their rules; it must not import the registry or the
polls (a commander's agency comes through the user model's own foreign key)."""
