-- +goose Up
-- Emails sent over SMTP used to be recorded with their activation token
-- (43 characters of base64url, in the link and on a line of its own). The
-- record is kept for deduplication and operators, who need no working
-- token; the handler now stores it redacted, and this redacts the old ones.
UPDATE mail.messages
   SET text_body = regexp_replace(text_body, '[A-Za-z0-9_-]{43}', '[redacted]', 'g'),
       html_body = regexp_replace(html_body, '[A-Za-z0-9_-]{43}', '[redacted]', 'g')
 WHERE transport = 'smtp';

-- +goose Down
-- The tokens are gone for good; nothing to undo.
SELECT 1;
