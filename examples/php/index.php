<?php
// shipper's PHP sample app, the twin of examples/hello: "/" answers a random
// Docker-style name (distracted_clarke), "/version" the short commit SHA from
// APP_VERSION, and every response carries "env: php-<version>". It is the
// router script of PHP's built-in server (php -S 0.0.0.0:8080 index.php):
// every request comes here, so no other file of the app is ever served.

declare(strict_types=1);

const ADJECTIVES = ['admiring', 'brave', 'busy', 'clever', 'distracted', 'eager', 'ecstatic', 'elegant',
    'focused', 'gallant', 'happy', 'hopeful', 'jolly', 'keen', 'laughing', 'modest', 'nostalgic', 'peaceful',
    'quirky', 'relaxed', 'serene', 'sharp', 'stoic', 'tender', 'upbeat', 'vibrant', 'wizardly', 'zealous'];
const NAMES = ['albattani', 'babbage', 'bohr', 'clarke', 'curie', 'darwin', 'einstein', 'euler', 'feynman',
    'galileo', 'goldberg', 'hopper', 'hypatia', 'kepler', 'knuth', 'lamarr', 'lovelace', 'mccarthy', 'meitner',
    'newton', 'noether', 'pasteur', 'ritchie', 'shannon', 'thompson', 'turing', 'wozniak', 'yonath'];

function random_name(): string
{
    return ADJECTIVES[array_rand(ADJECTIVES)] . '_' . NAMES[array_rand(NAMES)];
}

header('env: php-' . PHP_VERSION);
header('Content-Type: text/plain; charset=utf-8');

$method = $_SERVER['REQUEST_METHOD'] ?? 'GET';
$path = parse_url($_SERVER['REQUEST_URI'] ?? '/', PHP_URL_PATH);
if ($method !== 'GET' && $method !== 'HEAD') {
    http_response_code(405);
    header('Allow: GET, HEAD');
    echo "method not allowed\n";
} elseif ($path === '/') {
    echo random_name(), "\n";
} elseif ($path === '/version') {
    echo (getenv('APP_VERSION') ?: 'unknown'), "\n";
} else {
    http_response_code(404);
    echo "not found\n";
}
