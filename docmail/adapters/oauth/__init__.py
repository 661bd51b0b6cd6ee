"""OAuth2 for mail accounts: provider registry, the authlib client, stored tokens, XOAUTH2."""
